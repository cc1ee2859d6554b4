"""The instrumentation kit: context injection, event detail, put_event, the log filter."""

from __future__ import annotations

import copy
import json
import logging
import time

import boto3
import pytest
from moto import mock_aws

from infra.instrument import (
    CONTEXT_STATE,
    ExecutionLogFilter,
    InvalidDefinition,
    PutEventFailed,
    event_detail,
    find_execution_name,
    inject_context,
    parse_execution_arn,
    put_event,
    validate_definition,
)
from infra.instrument.context import CONTEXT_PARAMETERS

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/edobs-test"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:EventDrivenMachine:job-1"
EXPRESS = "arn:aws:states:us-east-1:123456789012:express:Fast:job-2:0f1e2d3c-aaaa-bbbb-cccc-1234"

PUT_GET_USERS = {
    "Type": "Task",
    "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken",
    "Parameters": {
        "Entries": [
            {
                "Source": "project",
                "DetailType": "getUsers",
                "EventBusName": "default",
                "Detail": {
                    "execution.$": "$$.Execution.Id",
                    "stateName.$": "$$.State.Name",
                    "TaskToken.$": "$$.Task.Token",
                },
            }
        ]
    },
    "ResultPath": "$.users",
    "TimeoutSeconds": 30,
}

DEMO_MACHINE = {
    "Comment": "The demo workflow: events out, task tokens back",
    "StartAt": "GetMultiple",
    "States": {
        "GetMultiple": {**PUT_GET_USERS, "Next": "ProcessMultiple"},
        "ProcessMultiple": {
            "Type": "Map",
            "ItemsPath": "$.users.names",
            "MaxConcurrency": 2,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "ProcessSingle",
                "States": {"ProcessSingle": {**PUT_GET_USERS, "End": True}},
            },
            "ResultPath": None,
            "Next": "PostProcessAll",
        },
        "PostProcessAll": {**PUT_GET_USERS, "End": True},
    },
}

BRANCHING_MACHINE = {
    "StartAt": "Route",
    "States": {
        "Route": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.kind", "StringEquals": "many", "Next": "Fan"}],
            "Default": "Both",
        },
        "Fan": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "Iterator": {
                "StartAt": "Double",
                "States": {"Double": {"Type": "Pass", "End": True}},
            },
            "ResultPath": "$.fanned",
            "Next": "Both",
        },
        "Both": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "Result": 1, "End": True}}},
                {
                    "StartAt": "Right",
                    "States": {"Right": {"Type": "Wait", "Seconds": 0, "End": True}},
                },
            ],
            "ResultPath": "$.both",
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Broken"}],
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
        "Broken": {"Type": "Fail", "Error": "Broken", "Cause": "a branch failed"},
    },
}

JSONATA_MACHINE = {
    "QueryLanguage": "JSONata",
    "StartAt": "Work",
    "States": {"Work": {"Type": "Pass", "Output": "{% $states.input %}", "End": True}},
}

DEFINITIONS = {"demo": DEMO_MACHINE, "branching": BRANCHING_MACHINE, "jsonata": JSONATA_MACHINE}


def incoming(detail: dict | None = None, **envelope) -> dict:
    """An EventBridge envelope as a Lambda receives it."""
    return {
        "version": "0",
        "id": "a5aa3c81-4f42-4dcb-b394-fb36bb2d420f",
        "detail-type": "getUserProfile",
        "source": "project",
        "account": "123456789012",
        "time": "2026-11-20T09:00:18Z",
        "region": REGION,
        "resources": [],
        "detail": detail if detail is not None else {},
        **envelope,
    }


@pytest.fixture(autouse=True)
def lambda_environment(monkeypatch):
    """What a Lambda runtime sets, and none of the kit's own settings."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "processSingleFn")
    for name in ("EDOBS_EVENT_SOURCE", "EDOBS_BUS_NAME", "EDOBS_STATE_MACHINE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aws(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


@pytest.fixture
def bus_to_queue(aws):
    """An EventBridge rule on source `project` delivering to an SQS queue; yields (events, read)."""
    sqs, events = (
        boto3.client("sqs", region_name=REGION),
        boto3.client("events", region_name=REGION),
    )
    url = sqs.create_queue(QueueName="edobs-kit")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    events.put_rule(Name="kit", EventPattern=json.dumps({"source": ["project"]}))
    events.put_targets(Rule="kit", Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}])

    def read(expected: int = 1, tries: int = 50) -> list[dict]:
        found: list[dict] = []
        for _ in range(tries):
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            found += [json.loads(message["Body"]) for message in messages]
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if len(found) >= expected:
                break
            time.sleep(0.05)
        return found

    return events, read


# --- inject_context ---------------------------------------------------------------------------


def test_it_puts_the_context_state_first():
    result = inject_context(DEMO_MACHINE)

    assert result["StartAt"] == CONTEXT_STATE
    assert list(result["States"])[0] == CONTEXT_STATE
    assert result["States"][CONTEXT_STATE] == {
        "Type": "Pass",
        "Parameters": CONTEXT_PARAMETERS,
        "ResultPath": "$.executionContext",
        "Next": "GetMultiple",
    }
    assert CONTEXT_PARAMETERS == {
        "id.$": "$$.Execution.Id",
        "name.$": "$$.Execution.Name",
        "startTime.$": "$$.Execution.StartTime",
    }


@pytest.mark.parametrize("name", DEFINITIONS)
def test_it_leaves_every_original_state_alone(name):
    original = copy.deepcopy(DEFINITIONS[name])

    result = inject_context(DEFINITIONS[name])

    assert DEFINITIONS[name] == original  # the argument is not modified
    assert {k: v for k, v in result["States"].items() if k != CONTEXT_STATE} == original["States"]
    assert {k: v for k, v in result.items() if k not in ("States", "StartAt")} == {
        k: v for k, v in original.items() if k not in ("States", "StartAt")
    }


@pytest.mark.parametrize("name", DEFINITIONS)
def test_it_is_idempotent_and_the_result_stays_valid(name):
    once = inject_context(DEFINITIONS[name])

    validate_definition(once)
    assert inject_context(once) == once
    assert inject_context(json.dumps(once)) == once


def test_it_accepts_json_text():
    assert inject_context(json.dumps(BRANCHING_MACHINE)) == inject_context(BRANCHING_MACHINE)


def test_it_writes_the_context_in_jsonata_for_jsonata_machines():
    state = inject_context(JSONATA_MACHINE)["States"][CONTEXT_STATE]

    assert set(state) == {"Type", "Output", "Next"}
    assert state["Next"] == "Work"
    assert state["Output"].startswith("{% $merge([$states.input, {'executionContext'")
    for field in ("Id", "Name", "StartTime"):
        assert f"$states.context.Execution.{field}" in state["Output"]


def test_it_can_use_another_state_name():
    result = inject_context(DEMO_MACHINE, state_name="Context")

    assert result["StartAt"] == "Context"
    assert inject_context(result, state_name="Context") == result


def _with(**states) -> dict:
    return {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}, **states}}


def _map(processor: dict) -> dict:
    return {
        "StartAt": "M",
        "States": {"M": {"Type": "Map", "ItemProcessor": processor, "End": True}},
    }


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (42, "must be a JSON object"),
        ({"StartAt": "A"}, "'States' must be a non-empty object"),
        ({"StartAt": "A", "States": {}}, "'States' must be a non-empty object"),
        ({"States": {"A": {"Type": "Pass", "End": True}}}, "'StartAt' is missing"),
        ({"StartAt": "B", "States": {"A": {"Type": "Pass", "End": True}}}, "StartAt 'B'"),
        (_with(B={"Type": "Pass", "Next": "Nowhere"}), "definition.States.B: Next 'Nowhere'"),
        (_with(B={"Type": "Task", "Resource": "x"}), "exactly one of 'Next'"),
        (_with(B={"Type": "Pass", "Next": "A", "End": True}), "exactly one of 'Next'"),
        (_with(B={"Type": "Sleep", "End": True}), "unknown Type 'Sleep'"),
        (_with(B={"Type": "Succeed", "Next": "A"}), "cannot have 'Next'"),
        (
            _with(B={"Type": "Choice", "Choices": [{"Next": "A"}], "Default": "Gone"}),
            "Default 'Gone'",
        ),
        (_with(B={"Type": "Choice", "Choices": []}), "non-empty 'Choices'"),
        (
            _with(B={"Type": "Task", "Resource": "x", "End": True, "Catch": [{"Next": "Lost"}]}),
            "Catch[0].Next 'Lost'",
        ),
        (_with(B={"Type": "Map", "End": True}), "needs an 'ItemProcessor'"),
        (_with(B={"Type": "Parallel", "End": True}), "non-empty 'Branches'"),
        (
            _map({"StartAt": "X", "States": {"Y": {"Type": "Pass", "End": True}}}),
            "definition.States.M.ItemProcessor: StartAt 'X'",
        ),
        (
            _with(B={"Type": "Parallel", "End": True, "Branches": [{"StartAt": "Z"}]}),
            "definition.States.B.Branches[0]: 'States'",
        ),
        (
            _with(**{CONTEXT_STATE: {"Type": "Pass", "Next": "A"}}),
            f"a state named '{CONTEXT_STATE}' already exists",
        ),
    ],
)
def test_it_refuses_invalid_definitions_and_says_why(definition, message):
    with pytest.raises(InvalidDefinition) as caught:
        inject_context(definition)

    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_it_refuses_a_context_state_that_is_not_the_start():
    moved = inject_context(DEMO_MACHINE)
    moved["StartAt"] = "GetMultiple"

    with pytest.raises(InvalidDefinition, match="already exists"):
        inject_context(moved)


def _run(sfn, definition: dict, execution_input: dict) -> tuple[str, str]:
    """Create and start a state machine in moto's interpreter; returns (machine, execution) ARNs."""
    machine = sfn.create_state_machine(
        name="EventDrivenMachine", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    execution = sfn.start_execution(
        stateMachineArn=machine, name="job-1", input=json.dumps(execution_input)
    )["executionArn"]
    return machine, execution


def _finished(sfn, execution: str, tries: int = 100) -> dict:
    """The last history event of a finished execution (moto runs executions in a thread)."""
    for _ in range(tries):
        history = sfn.get_execution_history(executionArn=execution)["events"]
        if history and history[-1]["type"] in ("ExecutionSucceeded", "ExecutionFailed"):
            return history[-1]
        time.sleep(0.05)
    raise AssertionError(f"{execution} did not finish")


def test_the_injected_machine_runs_and_keeps_its_input(aws):
    sfn = boto3.client("stepfunctions", region_name=REGION)
    _, execution = _run(sfn, inject_context(BRANCHING_MACHINE), {"kind": "many", "items": [1, 2]})

    last = _finished(sfn, execution)

    assert last["type"] == "ExecutionSucceeded"
    output = json.loads(last["executionSucceededEventDetails"]["output"])
    assert output["kind"] == "many" and output["fanned"] == [1, 2]
    assert output["executionContext"]["id"] == execution
    assert output["both"][0] == 1  # the Parallel branches ran, the Wait one passed its input on
    assert output["both"][1]["executionContext"] == output["executionContext"]
    assert output["executionContext"]["name"] == "job-1"
    assert output["executionContext"]["startTime"]


def test_a_kit_lambda_answers_an_instrumented_machine_end_to_end(bus_to_queue):
    events, read = bus_to_queue
    sfn = boto3.client("stepfunctions", region_name=REGION)
    definition = {
        "StartAt": "GetMultiple",
        "States": {"GetMultiple": {**PUT_GET_USERS, "End": True}},
    }
    _, execution = _run(sfn, inject_context(definition), {"order": 7})
    [get_users] = read()

    event_id = put_event(get_users, "done", {"names": ["Ada"]}, client=events, fn="getMultipleFn")
    sfn.send_task_success(taskToken=get_users["detail"]["TaskToken"], output='{"names": ["Ada"]}')
    [done] = read()

    assert done["id"] == event_id
    assert done["detail"]["execution"] == execution
    assert done["detail"]["TaskToken"] == get_users["detail"]["TaskToken"]
    assert done["detail"]["meta"]["incoming"]["id"] == get_users["id"]
    assert done["detail"]["meta"]["job"] == "job-1"
    output = json.loads(_finished(sfn, execution)["executionSucceededEventDetails"]["output"])
    assert output == {
        "order": 7,
        "executionContext": output["executionContext"],
        "users": {"names": ["Ada"]},
    }


# --- event_detail -----------------------------------------------------------------------------


def test_it_writes_execution_carried_fields_and_meta():
    event = incoming({"name": "Ada", "execution": EXECUTION, "stateName": "P", "TaskToken": "T"})

    detail = event_detail(
        event, "getUserCookies", {"profile": "p", "name": "Ada"}, clock=lambda: 1795165218.3504
    )

    assert detail == {
        "profile": "p",
        "name": "Ada",
        "execution": EXECUTION,
        "stateName": "P",
        "TaskToken": "T",
        "meta": {
            "incoming": {
                "account": "123456789012",
                "source": "project",
                "detailType": "getUserProfile",
                "id": "a5aa3c81-4f42-4dcb-b394-fb36bb2d420f",
            },
            "outgoing": {"source": "project", "detailType": "getUserCookies"},
            "fn": "processSingleFn",
            "stateMachine": "EventDrivenMachine",
            "job": "job-1",
            "emittedAt": 1795165218350,
        },
    }


def test_it_stamps_when_the_event_was_built_in_epoch_milliseconds():
    before = time.time()

    emitted = event_detail(incoming({"execution": EXECUTION}), "done", {})["meta"]["emittedAt"]

    assert isinstance(emitted, int)
    assert round(before * 1000) <= emitted <= round(time.time() * 1000)


@pytest.mark.parametrize(
    "detail",
    [
        {"execution": EXECUTION},
        {"executionContext": {"id": EXECUTION, "name": "job-1", "startTime": "2026-11-20"}},
        {"executionContext": {"context": {"Execution": {"Id": EXECUTION}}}},
        {"executionArn": EXECUTION, "status": "RUNNING"},
    ],
)
def test_it_finds_the_execution_wherever_the_incoming_event_has_it(detail):
    result = event_detail(incoming(detail), "done", {}, fn="f", source="project")

    assert result["execution"] == EXECUTION
    assert (result["meta"]["stateMachine"], result["meta"]["job"]) == (
        "EventDrivenMachine",
        "job-1",
    )


def test_it_reads_express_execution_arns():
    result = event_detail(incoming({"execution": EXPRESS}), "done", {}, fn="f")

    assert (result["meta"]["stateMachine"], result["meta"]["job"]) == ("Fast", "job-2")


def test_it_leaves_execution_out_when_the_incoming_event_has_none():
    result = event_detail(incoming({}, **{"detail-type": "start"}), "done", {"a": 1}, fn="f")

    assert "execution" not in result and "TaskToken" not in result
    assert result["meta"]["job"] is None and result["meta"]["incoming"]["detailType"] == "start"


def test_the_payload_never_overwrites_meta_or_execution(caplog):
    payload = {"meta": {"fn": "fake"}, "execution": "arn:fake", "stateName": "Mine", "x": 1}

    with caplog.at_level(logging.WARNING):
        result = event_detail(incoming({"execution": EXECUTION, "stateName": "P"}), "d", payload)

    assert result["execution"] == EXECUTION
    assert result["meta"]["fn"] == "processSingleFn"
    assert result["stateName"] == "Mine" and result["x"] == 1
    assert "dropped" in caplog.text


def test_the_source_comes_from_the_argument_then_the_environment_then_the_incoming_event(
    monkeypatch,
):
    event = incoming({"execution": EXECUTION}, source="orders")
    assert event_detail(event, "d", {}, fn="f")["meta"]["outgoing"]["source"] == "orders"
    monkeypatch.setenv("EDOBS_EVENT_SOURCE", "billing")
    assert event_detail(event, "d", {}, fn="f")["meta"]["outgoing"]["source"] == "billing"
    assert event_detail(event, "d", {}, fn="f", source="x")["meta"]["outgoing"]["source"] == "x"


def test_it_refuses_to_emit_with_an_aws_source():
    status = incoming({"executionArn": EXECUTION}, source="aws.states")

    with pytest.raises(ValueError, match="EDOBS_EVENT_SOURCE"):
        event_detail(status, "d", {}, fn="f")


def test_it_needs_a_function_name(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)

    with pytest.raises(ValueError, match="AWS_LAMBDA_FUNCTION_NAME"):
        event_detail(incoming({"execution": EXECUTION}), "d", {})


def test_a_direct_invocation_payload_is_searched_at_its_top_level():
    payload = {"executionContext": {"id": EXECUTION, "name": "job-1"}, "TaskToken": "T"}

    result = event_detail(payload, "d", {}, fn="f", source="project")

    assert result["execution"] == EXECUTION and result["TaskToken"] == "T"


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (EXECUTION, ("EventDrivenMachine", "job-1")),
        (EXPRESS, ("Fast", "job-2")),
        ("arn:aws:states:us-east-1:1:execution:SM/run:child", ("SM/run", "child")),
        ("arn:aws:states:us-east-1:1:stateMachine:SM", None),
        ("arn:aws:lambda:us-east-1:1:execution:SM:x", None),
        ("arn:aws:states:us-east-1:1:execution:SM:x:extra", None),
        (None, None),
    ],
)
def test_it_parses_execution_arns(arn, expected):
    ref = parse_execution_arn(arn)

    assert (ref and (ref.state_machine, ref.name)) == expected


# --- put_event --------------------------------------------------------------------------------


def test_it_sends_the_event_and_returns_its_id(bus_to_queue):
    events, read = bus_to_queue
    event = incoming({"name": "Ada", "execution": EXECUTION, "TaskToken": "T"})

    clock = lambda: 1795165218.35  # noqa: E731
    event_id = put_event(event, "getUserCookies", {"name": "Ada"}, client=events, clock=clock)
    [delivered] = read()

    assert delivered["id"] == event_id
    assert (delivered["source"], delivered["detail-type"]) == ("project", "getUserCookies")
    assert delivered["detail"] == event_detail(
        event, "getUserCookies", {"name": "Ada"}, clock=clock
    )
    assert delivered["detail"]["meta"]["emittedAt"] == 1795165218350


def test_it_makes_its_own_client_and_honours_the_bus_name(bus_to_queue, monkeypatch):
    _, read = bus_to_queue
    monkeypatch.setenv("EDOBS_BUS_NAME", "default")

    event_id = put_event(incoming({"execution": EXECUTION}), "done", {"ok": True})

    assert [e["id"] for e in read()] == [event_id]


class RefusingClient:
    def put_events(self, Entries):  # noqa: N803 (boto3's argument name)
        return {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "AccessDeniedException", "ErrorMessage": "not allowed"}],
        }


def test_it_raises_a_clear_error_when_eventbridge_refuses():
    with pytest.raises(PutEventFailed, match="'done' event: AccessDeniedException: not allowed"):
        put_event(incoming({"execution": EXECUTION}), "done", {}, client=RefusingClient(), fn="f")


# --- ExecutionLogFilter -----------------------------------------------------------------------


@pytest.fixture
def log_lines():
    """A logger whose handler uses the filter; yields (logger, captured lines)."""
    lines: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = ListHandler()
    handler.addFilter(ExecutionLogFilter())
    handler.setFormatter(logging.Formatter("[%(execution)s] %(message)s"))
    logger = logging.getLogger("tests.infra.kit")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, lines
    logger.removeHandler(handler)


def test_it_stamps_records_with_the_bound_execution(log_lines):
    logger, lines = log_lines

    logger.info("before")
    with ExecutionLogFilter.bind(incoming({"execution": EXECUTION})) as name:
        logger.info("inside")
        with ExecutionLogFilter.bind(incoming({"executionArn": EXPRESS})):
            logger.info("nested")
        logger.info("back")
    logger.info("after")

    assert name == "job-1"
    assert lines == ["[-] before", "[job-1] inside", "[job-2] nested", "[job-1] back", "[-] after"]


def test_it_falls_back_to_the_context_name_then_meta_job_then_a_dash(log_lines):
    logger, lines = log_lines
    cases = [
        incoming({"executionContext": {"name": "ctx-name"}}),
        incoming({"meta": {"job": "meta-job"}}),
        incoming({}),
        "given-name",
        None,
    ]
    for event in cases:
        with ExecutionLogFilter.bind(event):
            logger.info("x")

    assert lines == ["[ctx-name] x", "[meta-job] x", "[-] x", "[given-name] x", "[-] x"]


def test_bind_takes_effect_without_with_and_extra_wins(log_lines):
    logger, lines = log_lines

    binding = ExecutionLogFilter.bind(incoming({"execution": EXECUTION}))
    logger.info("bound")
    logger.info("explicit", extra={"execution": "other"})
    binding.reset()
    logger.info("reset")

    assert lines == ["[job-1] bound", "[other] explicit", "[-] reset"]
    assert find_execution_name(incoming({"execution": EXECUTION})) == "job-1"


def test_install_adds_the_filter_to_every_handler():
    logger = logging.getLogger("tests.infra.install")
    handlers = [logging.NullHandler(), logging.NullHandler()]
    for handler in handlers:
        logger.addHandler(handler)

    log_filter = ExecutionLogFilter.install(logger)

    assert all(log_filter in handler.filters for handler in handlers)
    for handler in handlers:
        logger.removeHandler(handler)


def test_the_instrument_command_prints_the_injected_definition(tmp_path, capsys):
    from django.core.management import call_command

    path = tmp_path / "machine.json"
    path.write_text(json.dumps({"StartAt": "Go", "States": {"Go": {"Type": "Pass", "End": True}}}))

    call_command("instrument", str(path))
    printed = json.loads(capsys.readouterr().out)

    assert printed["StartAt"] == "EdobsExecutionContext"
    assert printed["States"]["EdobsExecutionContext"]["Next"] == "Go"


def test_the_instrument_command_names_what_is_wrong(tmp_path):
    from django.core.management import CommandError, call_command

    path = tmp_path / "machine.json"
    path.write_text('{"StartAt": "Nope", "States": {"Go": {"Type": "Pass", "End": true}}}')

    with pytest.raises(CommandError, match="Nope"):
        call_command("instrument", str(path))
