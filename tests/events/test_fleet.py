"""events.domain.fleet and events.domain.search: pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.domain import fleet
from events.domain.search import Where, parse_where, text_matches, where_matches
from events.domain.summary import JobSummary

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)


def job(
    name="j", *, status=None, ran: float | None = None, start_min: float = 0, error=None,
    machine="M",
) -> JobSummary:  # fmt: skip
    """A job started `start_min` minutes after T0 that ran `ran` seconds (None: no stop)."""
    started = T0 + timedelta(minutes=start_min)
    stopped = started + timedelta(seconds=ran) if ran is not None else None
    return JobSummary(
        id=f"1:r:{machine}:{name}", state_machine=machine, name=name, account="1", region="r",
        status=status, started_at=started, stopped_at=stopped, error=error,
    )  # fmt: skip


def test_it_measures_duration_finished_running_and_unknown():
    assert fleet.duration_ms(job(status="SUCCEEDED", ran=1.5), NOW) == 1500
    assert fleet.duration_ms(job(status="RUNNING"), NOW) == 3_600_000
    assert fleet.duration_ms(job(status=None), NOW) == 3_600_000
    assert fleet.duration_ms(job(status="FAILED"), NOW) is None  # finished, stop never seen
    no_start = JobSummary(id="x", state_machine="M", name="x", account="1", region="r")
    assert fleet.duration_ms(no_start, NOW) is None


def test_it_takes_nearest_rank_percentiles():
    values = list(range(1, 101))
    assert fleet.percentile(values, 0.5) == 50
    assert fleet.percentile(values, 0.95) == 95
    assert fleet.percentile(values, 0.99) == 99
    assert fleet.percentile([7], 0.99) == 7
    assert fleet.percentile([3, 1, 2], 0.5) == 2
    assert fleet.percentile([], 0.5) is None


def test_it_needs_enough_succeeded_jobs_for_a_baseline():
    four = [job(f"s{n}", status="SUCCEEDED", ran=60) for n in range(4)]
    assert fleet.baseline(four) == fleet.Baseline(p99_ms=None, samples=4)
    five = [*four, job("s4", status="SUCCEEDED", ran=360)]
    assert fleet.baseline(five) == fleet.Baseline(p99_ms=360_000, samples=5)


def test_it_calls_a_job_stuck_past_the_factor_times_the_p99():
    normal = fleet.Baseline(p99_ms=6 * 60_000, samples=20)
    running = job(status="RUNNING", start_min=48)  # 12 min before NOW

    verdict = fleet.health(running, normal=normal, factor=2, now=NOW + timedelta(seconds=1))

    assert verdict.stuck and verdict.duration_ms == 721_000
    assert verdict.stuck_reason == "running 12 min, 2x the p99 of 6 min"
    at_the_limit = fleet.health(running, normal=normal, factor=2, now=NOW)
    assert (at_the_limit.stuck, at_the_limit.stuck_reason) == (False, None)
    assert not fleet.health(running, normal=normal, factor=3, now=NOW + timedelta(minutes=5)).stuck


def test_it_never_calls_a_finished_or_unjudged_job_stuck():
    normal = fleet.Baseline(p99_ms=1000, samples=20)
    failed = job(status="FAILED", ran=3600)
    assert not fleet.health(failed, normal=normal, factor=2, now=NOW).stuck
    unjudged = fleet.Baseline(p99_ms=None, samples=3)
    assert not fleet.health(job(status="RUNNING"), normal=unjudged, factor=2, now=NOW).stuck
    no_status = fleet.health(job(status=None), normal=normal, factor=2, now=NOW)
    assert no_status.stuck and no_status.stuck_reason.startswith("running 1 h, 3600x")


@pytest.mark.parametrize(
    ("text", "size"),
    [("15m", timedelta(minutes=15)), ("1h", timedelta(hours=1)), ("1d", timedelta(days=1))],
)
def test_it_parses_buckets(text, size):
    assert fleet.parse_bucket(text) == size


@pytest.mark.parametrize("text", ["", "0h", "01h", "1", "h", "1w", "1.5h", "-1h", "367d", "١h"])
def test_it_refuses_bad_buckets(text):
    with pytest.raises(ValueError):
        fleet.parse_bucket(text)


def test_it_aligns_buckets_to_the_epoch_and_bounds_their_number():
    starts = fleet.bucket_starts(
        T0 + timedelta(minutes=7), T0 + timedelta(minutes=61), timedelta(minutes=30)
    )
    assert starts == [T0, T0 + timedelta(minutes=30), T0 + timedelta(minutes=60)]
    assert len(fleet.bucket_starts(T0, T0 + timedelta(hours=500), timedelta(hours=1))) == 500
    with pytest.raises(ValueError, match="501 buckets"):
        fleet.bucket_starts(T0, T0 + timedelta(hours=501), timedelta(hours=1))
    with pytest.raises(ValueError, match="after"):
        fleet.bucket_starts(T0, T0, timedelta(hours=1))
    with pytest.raises(ValueError, match="calendar"):
        fleet.bucket_starts(
            datetime(1, 1, 1, tzinfo=UTC), datetime(2, 1, 1, tzinfo=UTC), timedelta(days=366)
        )


def test_it_counts_and_measures_jobs_per_bucket():
    jobs = [
        job("a", status="SUCCEEDED", ran=10, start_min=1),
        job("b", status="SUCCEEDED", ran=20, start_min=2),
        job("c", status="FAILED", ran=30, start_min=3, error="Boom"),
        job("d", status="TIMED_OUT", ran=3600, start_min=4, error="States.Timeout"),
        job("e", status="FAILED", ran=5, start_min=70, error="Boom"),
        job("f", status="RUNNING", start_min=75),
        job("early", status="SUCCEEDED", ran=600, start_min=-5),  # started before the range
    ]
    starts = fleet.bucket_starts(T0, T0 + timedelta(hours=2), timedelta(hours=1))

    answer = fleet.metrics(jobs, starts=starts, size=timedelta(hours=1))

    first, second = answer["buckets"]
    assert (first["start"], first["end"]) == (T0, T0 + timedelta(hours=1))
    assert (first["started"], first["succeeded"], first["failed"]) == (4, 3, 1)
    assert (first["p50_ms"], first["p95_ms"]) == (20_000, 600_000)
    assert first["errors"] == [{"error": "Boom", "count": 1}]
    assert (second["started"], second["succeeded"], second["failed"]) == (2, 0, 2)
    assert second["errors"] == [
        {"error": "Boom", "count": 1}, {"error": "States.Timeout", "count": 1}
    ]  # fmt: skip
    assert (second["p50_ms"], second["p95_ms"]) == (5_000, 3_600_000)
    total = answer["total"]
    assert (total["started"], total["succeeded"], total["failed"]) == (6, 3, 3)
    assert total["errors"] == [
        {"error": "Boom", "count": 2},
        {"error": "States.Timeout", "count": 1},
    ]


def test_it_gives_empty_buckets_nulls_not_zeros():
    starts = fleet.bucket_starts(T0, T0 + timedelta(minutes=30), timedelta(minutes=15))
    answer = fleet.metrics([], starts=starts, size=timedelta(minutes=15))
    assert [b["started"] for b in answer["buckets"]] == [0, 0]
    assert answer["total"]["p50_ms"] is None and answer["total"]["errors"] == []


# ---- events.domain.search ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("orderId=1234", Where(("orderId",), 1234)),
        ('customer.name="Zoë"', Where(("customer", "name"), "Zoë")),
        ("status=FAILED", Where(("status",), "FAILED")),
        ("a=NaN", Where(("a",), "NaN")),
        ("a=", Where(("a",), "")),
        ("a=x=y", Where(("a",), "x=y")),
        ("a.b.c=true", Where(("a", "b", "c"), True)),
        ('a={"b": [1]}', Where(("a",), {"b": [1]})),
        # the path starts inside the detail; a leading "detail." is allowed (issue 16's form)
        ("detail.orderId=1234", Where(("orderId",), 1234)),
        ("detail.detail.x=1", Where(("detail", "x"), 1)),
        ("detail=1", Where(("detail",), 1)),
    ],
)
def test_it_parses_where(text, where):
    assert parse_where(text) == where


@pytest.mark.parametrize("text", ["", "=1", "a", "a..b=1", ".a=1", "a.=1", "." * 30 + "=1"])
def test_it_refuses_a_bad_where(text):
    with pytest.raises(ValueError):
        parse_where(text)


def test_it_matches_where_by_json_type_and_value():
    detail = {"orderId": 1234, "flag": True, "customer": {"name": "Zoë"}, "list": [1]}
    assert where_matches(detail, Where(("orderId",), 1234))
    assert where_matches(detail, Where(("orderId",), 1234.0))
    assert not where_matches(detail, Where(("orderId",), "1234"))
    assert not where_matches(detail, Where(("flag",), 1))
    assert where_matches(detail, Where(("flag",), True))
    assert where_matches(detail, Where(("customer", "name"), "Zoë"))
    assert not where_matches(detail, Where(("customer", "name", "x"), "Zoë"))
    assert not where_matches(detail, Where(("list", "0"), 1))  # paths never index arrays
    assert not where_matches(detail, Where(("missing",), None))


@pytest.mark.parametrize("text", ["😀", "zoë", "ZOË", "東京", "order-9", "id-42"])
def test_it_matches_free_text_in_any_script(text):
    detail = {"note": "Zoë 😀 visits 東京", "ref": "ORDER-9"}
    assert text_matches("ID-42", detail, text.casefold())


def test_it_does_not_match_absent_text():
    assert not text_matches("id-1", {"note": "zoe"}, "zoë")


@pytest.mark.parametrize("text", ['a="\\u0000"', 'a="\\ud800"', 'a={"k\\u0000": 1}'])
def test_it_refuses_a_where_no_database_could_hold(text):
    with pytest.raises(ValueError, match="NUL"):
        parse_where(text)
