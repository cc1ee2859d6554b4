"""events.read.listing: sorting with unknown values last, counts and the read cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.domain.summary import JobSummary
from events.read import listing
from events.stores.base import JobFilter

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def summary(name: str, *, ran_ms: int | None, events: int, status: str | None = "SUCCEEDED"):
    start = None if ran_ms is None else NOW - timedelta(minutes=5)
    stop = None if ran_ms is None else start + timedelta(milliseconds=ran_ms)
    return JobSummary(
        id=f"1:r:M:{name}", state_machine="M", name=name, account="1", region="r",
        status=status, started_at=start, stopped_at=stop, first_event_at=NOW,
        last_event_at=NOW, event_count=events,
    )  # fmt: skip


JOBS = [
    summary("a", ran_ms=900, events=4),
    summary("b", ran_ms=None, events=9, status=None),
    summary("c", ran_ms=120, events=4),
]


def names(jobs) -> list[str]:
    return [job.name for job in jobs]


@pytest.mark.parametrize(
    "sort,want",
    [
        ("duration", ["c", "a", "b"]),
        ("-duration", ["a", "c", "b"]),  # unknown last both ways
        ("-events", ["b", "a", "c"]),  # ties keep the read order
        ("events", ["a", "c", "b"]),
        ("nonsense", ["a", "b", "c"]),  # the default: -last, all equal here
    ],
)
def test_it_sorts_by_a_column_with_unknown_values_last(sort, want):
    assert names(listing.ordered(JOBS, listing.JOB_SORTS, sort, "-last", NOW)) == want


def test_it_reads_a_sort_and_falls_back_to_the_default():
    assert listing.sort_key("-events", listing.JOB_SORTS, "-last") == ("events", True)
    assert listing.sort_key("drop table", listing.JOB_SORTS, "-last") == ("last", True)


def test_it_matches_text_inside_any_case_and_script():
    assert listing.contains("OrderFlow", "derfl")
    assert listing.contains("注文フロー", "注文")
    assert not listing.contains(None, "x") and listing.contains(None, "")


def test_a_listing_says_where_its_page_sits():
    page = listing.Listing(items=JOBS[:2], total=5, more=False, offset=2, limit=2)
    assert (page.first, page.last, page.has_previous, page.has_next) == (3, 4, True, True)
    empty = listing.Listing(items=[], total=0, more=False, offset=0, limit=50)
    assert (empty.first, empty.last, empty.has_next) == (0, 0, False)


@pytest.mark.django_db
def test_it_stops_at_the_cap_and_says_there_is_more(superuser):
    from tests.events.conftest import ingest_bodies, sample_lines

    ingest_bodies(sample_lines())
    everything, _ = listing.job_listing(user=superuser, query=listing.JobQuery())
    capped, health = listing.job_listing(user=superuser, query=listing.JobQuery(), cap=2)
    failed, _ = listing.job_listing(
        user=superuser, query=listing.JobQuery(filters=JobFilter(statuses=("FAILED",)))
    )

    assert everything.total == 3 and not everything.more
    assert capped.total == 2 and capped.more and set(health) == {j.id for j in capped.items}
    assert failed.total == 1 and failed.items[0].status == "FAILED"


@pytest.mark.django_db
def test_it_stops_reading_at_its_budget_and_says_there_is_more(superuser, monkeypatch):
    from tests.events.conftest import ingest_bodies, sample_lines

    ingest_bodies(sample_lines())  # three jobs
    monkeypatch.setattr(listing, "STORE_PAGE", 1)
    nothing = listing.JobQuery(state_machine="no such machine")

    monkeypatch.setattr(listing, "JOB_READ", 2)
    cut_short, _ = listing.job_listing(user=superuser, query=nothing)
    monkeypatch.setattr(listing, "JOB_READ", 3)
    read_to_the_end, _ = listing.job_listing(user=superuser, query=nothing)

    assert (cut_short.total, cut_short.more) == (0, True)
    assert (read_to_the_end.total, read_to_the_end.more) == (0, False)
    assert listing.state_machine_names(user=superuser, limit=12) == ["EventDrivenMachine"]
