"""Distributed Map runs and nested executions: how jobs relate to one another (pure).

A Distributed Map state starts one child execution per item batch, under the state machine
name `Parent/MapRunLabel` (FACTS: `...:execution:SM/MAPRUN:CHILD`). One Map Run can start
thousands of children: lists show it as one row (its newest child, carrying `map_run` with the
children's counts), so the children never flood the newest jobs. A Map Run is one account,
region and `Parent/Label`: the same label in two accounts is two runs that share nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from events.domain.correlation import TERMINAL_STATUSES
from events.domain.envelope import iso
from events.domain.summary import JobSummary

SUCCEEDED = "SUCCEEDED"


def is_map_child(state_machine: str) -> bool:
    return "/" in state_machine


def map_run_label(state_machine: str) -> str | None:
    """The Map Run label of a child's state machine (`Parent/Label` -> `Label`), else None."""
    return state_machine.split("/", 1)[1] if is_map_child(state_machine) else None


def map_run_key(job: JobSummary) -> tuple[str, str, str]:
    return job.account, job.region, job.state_machine


def counts(state_machine: str, children: Iterable[JobSummary]) -> dict[str, Any]:
    """`map_run`: the label and how many children run, succeeded and failed. A child with no
    terminal status counts as running (express children send no status events)."""
    answer = {"label": map_run_label(state_machine), "running": 0, "succeeded": 0, "failed": 0}
    for child in children:
        answer[_bucket(child.status)] += 1
    return answer


def _bucket(status: str | None) -> str:
    if status == SUCCEEDED:
        return "succeeded"
    return "failed" if status in TERMINAL_STATUSES else "running"


def child_groups(children: Iterable[JobSummary]) -> tuple[list[dict[str, Any]], list[JobSummary]]:
    """A parent's children split into its Map Runs (`{"state_machine", "map_run", "newest"}`,
    newest activity first) and its nested executions (as given)."""
    runs: dict[tuple[str, str, str], list[JobSummary]] = {}
    nested: list[JobSummary] = []
    for child in children:
        if is_map_child(child.state_machine):
            runs.setdefault(map_run_key(child), []).append(child)
        else:
            nested.append(child)
    groups = [
        {"state_machine": key[2], "map_run": counts(key[2], jobs), "newest": jobs[0]}
        for key, jobs in runs.items()
    ]
    return groups, nested


def child_spans(
    runs: list[dict[str, Any]], nested: list[JobSummary], *, first_lane: int, first_row: int
) -> list[dict[str, Any]]:
    """Timeline spans for the executions a job started, one lane each, drawn from the child's
    start to its stop: a nested execution, or a Map Run from its first child's start to its
    last child's stop. `child` is the job id to open (a Map Run's newest child), `map_run`
    the run's counts."""
    rows = [(child, None, [child]) for child in nested]
    rows += [(run["newest"], run, run.get("children") or [run["newest"]]) for run in runs]
    return [
        {**_child_span(job, run, jobs, first_lane + n), "row": first_row + n}
        for n, (job, run, jobs) in enumerate(rows)
    ]


def _child_span(job: JobSummary, run: dict | None, jobs: list[JobSummary], lane: int) -> dict:
    starts = [j.started_at or j.first_event_at for j in jobs]
    stops = [j.stopped_at or j.last_event_at for j in jobs]
    start = min(filter(None, starts), default=None)
    end = max(filter(None, stops), default=None)
    duration = max(0, round((end - start).total_seconds() * 1000)) if start and end else None
    failed = run["map_run"]["failed"] if run else _bucket(job.status) == "failed"
    name = f"Map Run {run['map_run']['label']}" if run else f"{job.state_machine}:{job.name}"
    return {
        "fn": None, "start": iso(start), "end": iso(end), "start_event": None,
        "end_event": f"execution:{job.id}", "incoming": None,
        "outgoing": {"source": "aws.states", "detailType": "StartExecution"}, "open": False,
        "lane": name, "state": None, "colour": None, "fn_lane": lane, "sub_lane": 0,
        "step": None, "duration_ms": duration,
        "skew_ms": None, "approx": False, "paired_by": "parent",
        "status": "failed" if failed else "ok", "kind": "execution", "child": job.id,
        "map_run": dict(run["map_run"]) if run else None,
    }  # fmt: skip
