"""Every bad input to the API is a 4xx in the one error shape, and the schema says so (issue 13).

Each input here answered HTTP 500 once: crafted or misplaced cursors, instants Python cannot hold,
empty times, ids no store can look up.
"""

from __future__ import annotations

import base64
import json

import pytest

from .conftest import ingest_bodies, sample_lines

JOB = "EventDrivenMachine:a6a3a450-6513-470e-a69e-0d37f2a74de4"
OTHER_JOB_NAME = "b87e4e2b-537d-4128-83a9-e88963b759f5"
JOBS = "/api/jobs"
EVENTS = f"/api/jobs/{JOB}/events"
ARCHITECTURE = "/api/architecture"

pytestmark = pytest.mark.django_db


def raw_cursor(values) -> str:
    """A cursor in the stores' encoding (base64url of a JSON array), made by hand."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.fixture
def api(client, django_user_model):
    """Logged in as a superuser, with two jobs of the samples. Cheap: no password to hash, few
    events (the test runs once per crafted input)."""
    names = (JOB.split(":")[1], OTHER_JOB_NAME)
    ingest_bodies([line for line in sample_lines() if any(name in line for name in names)])
    client.force_login(django_user_model.objects.create(username="root", is_superuser=True))
    return client


def assert_error(response, status: int) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    return body["error"]


CRAFTED = {
    'the JSON [123, "x"] as sent': '[123,"x"]',
    "the JSON [null, 1] as sent": "[null,1]",
    '["x", "y"] (WyJ4IiwieSJd)': "WyJ4IiwieSJd",
    '[123, "x"]': raw_cursor([123, "x"]),
    "[null, 1]": raw_cursor([None, 1]),
    "no kind: time and id": raw_cursor(["2026-11-20T10:00:00+00:00", JOB]),
    "no kind: time and seq": raw_cursor(["2026-11-20T10:00:00+00:00", 1]),
    "an object": raw_cursor({"jobs": 1}),
    "an empty list": raw_cursor([]),
    "an unknown kind": raw_cursor(["other", "2026-11-20T10:00:00+00:00", 1]),
    "jobs: not a time": raw_cursor(["jobs", "yesterday", JOB]),
    "jobs: a naive time": raw_cursor(["jobs", "2026-11-20T10:00:00", JOB]),
    "jobs: a time out of range": raw_cursor(["jobs", "0001-01-01T00:00:00+01:00", JOB]),
    "jobs: a number for the id": raw_cursor(["jobs", "2026-11-20T10:00:00+00:00", 5]),
    "jobs: a NUL in the id": raw_cursor(["jobs", "2026-11-20T10:00:00+00:00", "a\x00b"]),
    "jobs: a lone surrogate": base64.urlsafe_b64encode(
        b'["jobs", "2026-11-20T10:00:00+00:00", "\\ud800"]'
    ).decode(),
    "jobs: an id too long": raw_cursor(["jobs", "2026-11-20T10:00:00+00:00", "j" * 2000]),
    "jobs: one value too many": raw_cursor(["jobs", "2026-11-20T10:00:00+00:00", JOB, 1]),
    "events: a string for the seq": raw_cursor(["events", "2026-11-20T10:00:00+00:00", "1"]),
    "events: a bool for the seq": raw_cursor(["events", "2026-11-20T10:00:00+00:00", True]),
    "events: a float for the seq": raw_cursor(["events", "2026-11-20T10:00:00+00:00", 1.5]),
    "events: a seq past 64 bits": raw_cursor(["events", "2026-11-20T10:00:00+00:00", 2**70]),
    "events: a negative seq": raw_cursor(["events", "2026-11-20T10:00:00+00:00", -1]),
    "events: a number for the time": raw_cursor(["events", 1795168800000, 1]),
    "deeply nested JSON": base64.urlsafe_b64encode(b"[" * 3000).decode(),
    "not base64": "%%%",
    "base64 of bytes that are not UTF-8": base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    "far too long": "A" * 100_000,
}


@pytest.mark.parametrize("path", [JOBS, EVENTS])
@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_it_refuses_a_crafted_cursor_with_400(api, path, name):
    response = api.get(path, {"cursor": CRAFTED[name]})

    assert assert_error(response, 400) == "cursor is not valid"


def test_it_refuses_a_jobs_cursor_on_a_jobs_events_and_the_reverse(api):
    jobs_cursor = api.get(JOBS, {"limit": 1}).json()["next_cursor"]
    events_cursor = api.get(EVENTS, {"limit": 1}).json()["next_cursor"]
    assert jobs_cursor and events_cursor

    assert assert_error(api.get(EVENTS, {"cursor": jobs_cursor}), 400) == "cursor is not valid"
    assert assert_error(api.get(JOBS, {"cursor": events_cursor}), 400) == "cursor is not valid"
    assert api.get(JOBS, {"cursor": jobs_cursor}).status_code == 200
    assert api.get(EVENTS, {"cursor": events_cursor}).status_code == 200


def test_its_cursors_say_which_listing_they_page(api):
    jobs_cursor = api.get(JOBS, {"limit": 1}).json()["next_cursor"]
    events_cursor = api.get(EVENTS, {"limit": 1}).json()["next_cursor"]

    def decode(cursor: str) -> list:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))

    assert decode(jobs_cursor)[0] == "jobs"
    assert decode(events_cursor)[0] == "events"


@pytest.mark.parametrize(
    "query",
    [
        {"since": "9999-12-31T23:59:59-01:00"},  # after the last instant Python holds
        {"until": "9999-12-31T23:59:59-01:00"},
        {"since": "0001-01-01T00:00:00+01:00"},  # before the first
        {"until": "0001-01-01T00:00:00+01:00"},
        {"until": ""},
        {"since": ""},
        {"since": "yesterday"},
        {"since": "2026-11-19"},  # a date, not a date-time
        {"since": "2026-11-19T00:00:00"},  # no offset: RFC 3339 needs one
        {"since": "2026-02-30T00:00:00Z"},  # no such day
        {"since": "2026-11-19T00:00:00+01"},
        {"since": "２０２６-11-19T00:00:00Z"},  # fullwidth digits fromisoformat would take
    ],
)
def test_it_refuses_a_time_it_cannot_use_with_400(api, query):
    error = assert_error(api.get(ARCHITECTURE, query), 400)

    assert error.startswith(next(iter(query)))


@pytest.mark.parametrize(
    "since", ["2026-11-19T00:00:00Z", "2026-11-19t00:00:00z", "2026-11-19T01:00:00.123+01:00"]
)
def test_it_takes_any_rfc3339_date_time(api, since):
    response = api.get(ARCHITECTURE, {"since": since, "until": "2999-12-31T23:59:59Z"})

    assert response.status_code == 200
    assert "fn:processSingleFn" in {node["id"] for node in response.json()["nodes"]}


@pytest.mark.parametrize(
    "url",
    [
        "/api/jobs?state_machine=a%00b",
        "/api/jobs?status=%00",
        "/api/architecture?state_machine=%00",
    ],
)
def test_it_refuses_a_nul_in_a_filter_with_400(api, url):
    """SQLite takes one; PostgreSQL refuses it with an error that was a 500."""
    assert_error(api.get(url), 400)


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs/a%00b/events",
        "/api/jobs/a%00b/timeline",
        "/api/job/a%00b",
        f"/api/jobs/{'j' * 1200}/events",
        f"/api/job/{'j' * 1200}",
    ],
)
def test_it_answers_404_for_a_job_id_no_job_can_have(api, path):
    assert_error(api.get(path), 404)


@pytest.mark.parametrize("path", ["/api/nothing-here", "/api/jobs/x/nothing", "/api/"])
def test_it_answers_an_unknown_api_url_with_a_json_404(api, path):
    assert_error(api.get(path), 404)


def test_it_answers_an_unknown_api_url_with_a_json_404_when_logged_out(client, db):
    assert_error(client.get("/api/nothing-here"), 404)


def test_it_refuses_another_method_with_a_json_405(api):
    response = api.post(JOBS, {})

    assert_error(response, 405)


# --- the schema tells the truth ------------------------------------------------------------------


@pytest.fixture
def schema(api):
    return json.loads(api.get("/api/schema").content)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def _parameter(operation, name):
    return next(p for p in operation.get("parameters", []) if p["name"] == name)["schema"]


def test_the_schema_documents_the_error_shape_once(schema):
    error = schema["components"]["schemas"]["Error"]

    assert error["required"] == ["error"]
    assert {name: field["type"] for name, field in error["properties"].items()} == {
        "error": "string"
    }


def test_the_schema_lists_every_status_each_endpoint_answers(schema):
    error = {"$ref": "#/components/schemas/Error"}
    expected = {
        "GET /api/latest/": {"200", "400", "401", "403"},
        "GET /api/job/{job_id}/": {"200", "401", "403", "404"},
        "GET /api/jobs/": {"200", "400", "401", "403"},
        "GET /api/jobs/{job_id}/events/": {"200", "400", "401", "403", "404"},
        "GET /api/jobs/{job_id}/timeline/": {"200", "401", "403", "404"},
        "GET /api/architecture/": {"200", "400", "401", "403"},
        "GET /api/architecture/diff/": {"200", "400", "401", "403"},
        "GET /api/events/": {"200", "400", "401", "403"},
        "GET /api/state-machines/{name}/metrics/": {"200", "400", "401", "403", "404"},
        "GET /api/jobs/compare/": {"200", "400", "401", "403", "404"},
        "GET /api/jobs/{job_id}/export/": {"200", "400", "401", "403", "404"},
        "GET /api/events/{event_id}/": {"200", "400", "401", "403", "404"},
        "GET /api/health/": {"200", "401", "403"},
        "GET /api/failures/": {"200", "400", "401", "403"},
        "GET /api/preferences/": {"200", "401", "403"},
        "PUT /api/preferences/": {"200", "400", "401", "403"},
        "GET /api/schemas/": {"200", "400", "401", "403"},
        "GET /api/schemas/{source}/{detail_type}/": {"200", "400", "401", "403", "404"},
        "POST /api/jobs/{job_id}/replay/": {"200", "400", "401", "403", "404", "429"},
        "POST /api/events/{event_id}/replay/": {"200", "400", "401", "403", "404", "429"},
    }

    found = {name: set(operation["responses"]) for name, operation in _operations(schema)}

    assert found == expected
    for name, operation in _operations(schema):
        for status, response in operation["responses"].items():
            body = response["content"]["application/json"]["schema"]
            if status == "200":
                assert "$ref" in body, f"{name}: a bare object"
            else:
                assert body == error, (name, status)


def test_the_schema_gives_the_mermaid_export_as_text(schema):
    export = dict(_operations(schema))["GET /api/jobs/{job_id}/export/"]

    assert export["responses"]["200"]["content"]["text/plain"]["schema"] == {"type": "string"}
    assert _parameter(export, "format")["enum"] == ["json", "mermaid"]


def test_the_schema_bounds_limit_and_types_cursor_and_times(schema):
    operations = dict(_operations(schema))

    for name in ("GET /api/jobs/", "GET /api/jobs/{job_id}/events/", "GET /api/latest/"):
        assert _parameter(operations[name], "limit") == {
            "type": "integer", "minimum": 1, "maximum": 500,
        }  # fmt: skip
    for name in ("GET /api/jobs/", "GET /api/jobs/{job_id}/events/"):
        assert _parameter(operations[name], "cursor") == {"type": "string"}
    for name in ("since", "until"):
        assert _parameter(operations["GET /api/architecture/"], name) == {
            "type": "string", "format": "date-time",
        }  # fmt: skip
    for name in ("since", "until", "base_since", "base_until"):
        assert _parameter(operations["GET /api/architecture/diff/"], name) == {
            "type": "string", "format": "date-time",
        }  # fmt: skip


def test_the_schema_names_the_top_level_keys_of_every_answer(schema):
    components = schema["components"]["schemas"]

    assert set(components["JobPage"]["properties"]) == {"results", "next_cursor", "next"}
    assert set(components["Timeline"]["properties"]) == {
        "job", "spans", "execution", "critical_path",
    }  # fmt: skip
    assert set(components["Compare"]["properties"]) == {
        "a", "b", "steps", "only_a", "only_b", "totals",
    }  # fmt: skip
    assert set(components["Export"]["properties"]) == {"job", "events"}
    assert set(components["Architecture"]["properties"]) == {"nodes", "edges", "failures_sampled"}
    assert set(components["ArchitectureDiff"]["properties"]) == {
        "nodes_added", "nodes_removed", "edges_added", "edges_removed", "edges_moved",
        "comparable",
    }  # fmt: skip
    assert set(components["OriginalLatest"]["properties"]) == {"latest"}
    assert set(components["OriginalJob"]["properties"]) == {"events"}
    assert {"id", "detail_type", "time", "detail", "raw"} <= set(components["Event"]["properties"])
