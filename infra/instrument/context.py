"""Inject the execution-context Pass state at the start of a state machine (DESIGN section 8).

The Pass state copies `$$.Execution.{Id, Name, StartTime}` to `$.executionContext` and keeps the
rest of the input, so every event the workflow puts afterwards can carry its execution.
Only the top level is changed; nested Map and Parallel definitions are validated, never altered.
"""

from __future__ import annotations

import copy
import json
from typing import Any

CONTEXT_STATE = "EdobsExecutionContext"
RESULT_PATH = "$.executionContext"
CONTEXT_PARAMETERS = {
    "id.$": "$$.Execution.Id",
    "name.$": "$$.Execution.Name",
    "startTime.$": "$$.Execution.StartTime",
}
# JSONata machines cannot hold JSONPath states, so they get the same context written in JSONata.
JSONATA_OUTPUT = (
    "{% $merge([$states.input, {'executionContext': {"
    "'id': $states.context.Execution.Id, "
    "'name': $states.context.Execution.Name, "
    "'startTime': $states.context.Execution.StartTime}}]) %}"
)

STATE_TYPES = frozenset({"Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"})
TERMINAL_TYPES = frozenset({"Succeed", "Fail"})


class InvalidDefinition(ValueError):
    """The definition is not a usable Amazon States Language state machine."""


def inject_context(definition: dict[str, Any] | str, *, state_name: str = CONTEXT_STATE) -> dict:
    """A copy of `definition` that starts with the execution-context Pass state.

    Idempotent: a definition that already starts with that state comes back unchanged.
    Raises `InvalidDefinition` naming the problem when the definition is not valid.
    """
    machine = _load(definition)
    validate_definition(machine)
    states = machine["States"]
    if state_name in states:
        if _is_context_state(machine, state_name):
            return machine
        raise InvalidDefinition(
            f"a state named {state_name!r} already exists and is not the edobs context state "
            f"at the start of the machine; rename it or pass another state_name"
        )
    context = _context_state(machine, next_state=machine["StartAt"])
    machine["States"] = {state_name: context, **states}
    machine["StartAt"] = state_name
    return machine


def context_state_name(definition: dict[str, Any]) -> str | None:
    """The name of the context state a definition starts with, if it was injected."""
    start = definition.get("StartAt")
    if isinstance(start, str) and _is_context_state(definition, start):
        return start
    return None


def validate_definition(definition: Any, *, where: str = "definition") -> None:
    """Raise `InvalidDefinition` unless `definition` is a structurally valid state machine.

    Checks what breaks the injection or the machine: `StartAt` and `States`, each state's
    `Type`, and every transition (`Next`, `Default`, `Choices[].Next`, `Catch[].Next`, `End`).
    Parallel branches and Map processors are checked the same way, recursively.
    """
    if not isinstance(definition, dict):
        raise InvalidDefinition(f"{where}: must be a JSON object, not {type(definition).__name__}")
    states = definition.get("States")
    if not isinstance(states, dict) or not states:
        raise InvalidDefinition(f"{where}: 'States' must be a non-empty object")
    start = definition.get("StartAt")
    if not isinstance(start, str) or not start:
        raise InvalidDefinition(f"{where}: 'StartAt' is missing or not a string")
    if start not in states:
        raise InvalidDefinition(f"{where}: StartAt {start!r} is not one of its States")
    for name, state in states.items():
        _validate_state(name, state, states, where=f"{where}.States.{name}")


def _load(definition: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(definition, bytes | bytearray):
        definition = definition.decode("utf-8")
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except json.JSONDecodeError as exc:
            raise InvalidDefinition(f"definition is not valid JSON: {exc}") from exc
    if not isinstance(definition, dict):
        raise InvalidDefinition(
            f"definition must be a JSON object, not {type(definition).__name__}"
        )
    return copy.deepcopy(definition)


def _validate_state(name: str, state: Any, states: dict[str, Any], *, where: str) -> None:
    if not isinstance(state, dict):
        raise InvalidDefinition(f"{where}: must be an object")
    kind = state.get("Type")
    if kind not in STATE_TYPES:
        raise InvalidDefinition(f"{where}: unknown Type {kind!r}")
    for label, target in _transitions(state, where=where):
        if not isinstance(target, str) or target not in states:
            raise InvalidDefinition(f"{where}: {label} {target!r} is not a state")
    _validate_ending(state, kind, where=where)
    for index, branch in enumerate(state.get("Branches") or []):
        validate_definition(branch, where=f"{where}.Branches[{index}]")
    if kind == "Parallel" and not state.get("Branches"):
        raise InvalidDefinition(f"{where}: a Parallel state needs a non-empty 'Branches' list")
    if kind == "Map":
        _validate_map(state, where=where)


def _transitions(state: dict[str, Any], *, where: str) -> list[tuple[str, Any]]:
    """(label, target) for every transition a state declares."""
    found = [("Next", state["Next"])] if "Next" in state else []
    if "Default" in state:
        found.append(("Default", state["Default"]))
    for key in ("Choices", "Catch"):
        rules = state.get(key, [])
        if not isinstance(rules, list):
            raise InvalidDefinition(f"{where}: '{key}' must be a list")
        for index, rule in enumerate(rules):
            target = rule.get("Next") if isinstance(rule, dict) else None
            found.append((f"{key}[{index}].Next", target))
    return found


def _validate_ending(state: dict[str, Any], kind: str, *, where: str) -> None:
    has_next, ends = "Next" in state, state.get("End") is True
    if kind in TERMINAL_TYPES or kind == "Choice":
        if has_next or "End" in state:
            raise InvalidDefinition(f"{where}: a {kind} state cannot have 'Next' or 'End'")
        if kind == "Choice" and not state.get("Choices"):
            raise InvalidDefinition(f"{where}: a Choice state needs a non-empty 'Choices' list")
        return
    if has_next == ends:
        raise InvalidDefinition(f"{where}: needs exactly one of 'Next' or '\"End\": true'")


def _validate_map(state: dict[str, Any], *, where: str) -> None:
    for key in ("ItemProcessor", "Iterator"):
        if key in state:
            validate_definition(state[key], where=f"{where}.{key}")
            return
    raise InvalidDefinition(f"{where}: a Map state needs an 'ItemProcessor' (or 'Iterator')")


def _uses_jsonata(machine: dict[str, Any]) -> bool:
    return machine.get("QueryLanguage") == "JSONata"


def _context_state(machine: dict[str, Any], *, next_state: str) -> dict[str, Any]:
    if _uses_jsonata(machine):
        return {"Type": "Pass", "Output": JSONATA_OUTPUT, "Next": next_state}
    return {
        "Type": "Pass",
        "Parameters": dict(CONTEXT_PARAMETERS),
        "ResultPath": RESULT_PATH,
        "Next": next_state,
    }


def _is_context_state(machine: dict[str, Any], name: str) -> bool:
    """True when `name` is the start state and is exactly the state the kit would write."""
    state = machine.get("States", {}).get(name)
    if machine.get("StartAt") != name or not isinstance(state, dict):
        return False
    return state == _context_state(machine, next_state=state.get("Next"))
