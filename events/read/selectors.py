"""Reads, scoped to what the user's team may see. Every view and consumer reads through here."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from django.conf import settings

from events.domain import fleet, maprun, search
from events.domain.architecture_diff import architecture_diff as diff_architectures
from events.domain.compare import compare_jobs, partner
from events.domain.correlation import TERMINAL_STATUSES, JobRef, parse_job_ref
from events.domain.envelope import NormalisedEvent
from events.domain.export import mermaid_gantt
from events.domain.lanes import first_seen_states, lane_order
from events.domain.summary import JobSummary
from events.domain.timeline import in_order
from events.domain.timeline import job_timeline as timeline_of
from events.models import TeamAccount
from events.read import drift as drift_reads
from events.stores import Page, get_store
from events.stores.base import Accounts, JobFilter, Window

MAX_JOB_ID = 1000  # bytes: no job id is longer, and DynamoDB refuses keys past 1-2 KiB
JOB_EVENTS_MAX = 100_000
BASELINE_JOBS = 5_000  # succeeded jobs per state machine that its p99 is computed from
STUCK_SCAN_PAGES = 20  # store pages of jobs a `stuck=1` listing reads before it answers short
STUCK_PAGE = 100
STATE_ORDER_JOBS = 5  # newest jobs of a state machine whose states give its lane order
STATE_ORDER_EVENTS = 500  # events read of each of them
PARTNER_JOBS = 50  # newest jobs of a state machine a comparison's default partner is taken from
MAP_RUN_CHILDREN = 20_000  # children of one Map Run counted (a Map Run may start 10,000)
GROUP_SCAN_PAGES = 50  # store pages a grouped listing reads before it answers short
GROUP_PAGE = 500
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# {state machine name: {(account, region): baseline}}: one name may run in several accounts.
Baselines = dict[str, dict[tuple[str, str], fleet.Baseline]]
NO_BASELINE = fleet.Baseline(p99_ms=None, samples=0)
# A page of jobs -> each with the row to list for it (None: skip it).
RowsOf = Callable[[list[JobSummary]], Iterator[tuple[JobSummary, JobSummary | None]]]


@dataclass(frozen=True)
class AccountScope:
    """Reads on behalf of no logged-in user (the alerts loop, events.alerts): an alert rule
    sees every account (None) or only its team's, as that team's members would."""

    accounts: Accounts


def visible_accounts(user) -> Accounts:
    """None for superusers (everything); otherwise the accounts their teams are granted."""
    if isinstance(user, AccountScope):
        return user.accounts
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return None
    accounts = TeamAccount.objects.filter(team__members=user).values_list("account", flat=True)
    return frozenset(accounts)


def can_see_account(user, account: str) -> bool:
    accounts = visible_accounts(user)
    return accounts is None or account in accounts


def job_list_latest(
    *, user, limit: int = 50, cursor: str | None = None, status: str | None = None,
    state_machine: str | None = None, filters: JobFilter | None = None, stuck: bool = False,
    baselines: Baselines | None = None, group_map_runs: bool = False,
) -> Page[JobSummary]:  # fmt: skip
    """Job summaries, newest activity first. `filters` wins over `status`/`state_machine`.

    `stuck` keeps the stuck jobs only: judged here (events.domain.fleet) while paging through the
    store, reading at most STUCK_SCAN_PAGES pages, so a page may come back short with a cursor.
    `group_map_runs` lists each Distributed Map run as one row (see `grouped_jobs`).
    """
    if filters is None:
        filters = JobFilter(status=status or None, state_machine=state_machine or None)
    store, accounts = get_store(), visible_accounts(user)
    grouped = group_map_runs and not stuck and not filters.state_machine and not filters.by_duration
    if grouped:
        return grouped_jobs(store=store, accounts=accounts, limit=limit, cursor=cursor,
                             filters=filters)  # fmt: skip
    if not stuck:
        return store.latest_jobs(accounts=accounts, limit=limit, cursor=cursor, filters=filters)
    unfinished = _unfinished(filters)
    if unfinished is None:
        return Page([])
    baselines = {} if baselines is None else baselines
    return _stuck_jobs(
        user=user, limit=limit, cursor=cursor, filters=unfinished, baselines=baselines
    )


def grouped_jobs(
    *, store, accounts: Accounts, limit: int, cursor: str | None, filters: JobFilter
) -> Page[JobSummary]:
    """Newest activity first, a Map Run's children as one row: its newest child (of the
    statuses asked for) with `map_run` set. Whether a child is its run's row is decided from
    the run's own children, not from what this call has read, so the row is the same one on
    every page and a cursor never shows a run twice. Store pages of at least GROUP_PAGE jobs:
    10,000 children read in 20 pages."""
    runs: dict[tuple[str, str, str], tuple[str | None, dict]] = {}

    def rows(jobs: list[JobSummary]) -> Iterator[tuple[JobSummary, JobSummary | None]]:
        return ((job, _listed(store, accounts, job, runs, filters)) for job in jobs)

    return _scan(store, accounts, filters, size=max(limit, GROUP_PAGE), pages=GROUP_SCAN_PAGES,
                 limit=limit, cursor=cursor, rows=rows)  # fmt: skip


def _scan(store, accounts: Accounts, filters: JobFilter, *, size: int, pages: int, limit: int,
          cursor: str | None, rows: RowsOf) -> Page[JobSummary]:  # fmt: skip
    """Store pages of `size` jobs, newest activity first, each kept through `rows`, until `limit`
    rows are found or `pages` were read. A cursor can start right after any job
    (store.job_cursor), so a big store page costs no gap."""
    found: list[JobSummary] = []
    for _ in range(pages):
        page = store.latest_jobs(accounts=accounts, limit=size, cursor=cursor, filters=filters)
        for job, row in rows(page.items):
            if row is None:
                continue
            found.append(row)
            if len(found) == limit:
                more = job is not page.items[-1] or page.next_cursor is not None
                return Page(found, store.job_cursor(job) if more else None)
        cursor = page.next_cursor
        if cursor is None:
            return Page(found)
    return Page(found, cursor)


def _listed(store, accounts, job: JobSummary, runs: dict, filters: JobFilter) -> JobSummary | None:
    """The job, its Map Run's row when it is the run's newest child, or None (another child)."""
    if not maprun.is_map_child(job.state_machine):
        return job
    key = maprun.map_run_key(job)
    if key not in runs:
        children = _run_children(store, accounts, job)
        wanted = filters.wanted_statuses()
        shown = [c for c in children if not wanted or (c.status or "") in wanted]
        runs[key] = (shown[0].id if shown else None, maprun.counts(job.state_machine, children))
    newest, counts = runs[key]
    return replace(job, map_run=counts) if job.id == newest else None


def _run_children(store, accounts: Accounts, job: JobSummary) -> list[JobSummary]:
    """The children of a child's Map Run, newest activity first."""
    found = store.state_machine_jobs(
        job.state_machine, accounts=accounts, since=EPOCH, limit=MAP_RUN_CHILDREN
    )
    return [c for c in found if (c.account, c.region) == (job.account, job.region)]


def with_map_run(*, user, job: JobSummary) -> JobSummary:
    """A Map Run child with `map_run` (its run's counts) filled in; other jobs as they are."""
    if not maprun.is_map_child(job.state_machine):
        return job
    children = _run_children(get_store(), visible_accounts(user), job)
    return replace(job, map_run=maprun.counts(job.state_machine, children))


def job_children(*, user, job: JobSummary) -> tuple[list[dict], list[JobSummary]]:
    """The executions this job started: its Map Runs (`{"state_machine", "map_run",
    "newest"}`, counted over all their children) and its nested executions, newest first."""
    store, accounts = get_store(), visible_accounts(user)
    runs, nested = maprun.child_groups(store.child_jobs(job.id, accounts=accounts))
    for run in runs:
        run["children"] = _run_children(store, accounts, run["newest"])
        run["map_run"] = maprun.counts(run["state_machine"], run["children"])
    return runs, nested


def job_list_health(
    *, user, limit: int = 50, cursor: str | None = None, filters: JobFilter, stuck: bool = False,
    group_map_runs: bool = False,
) -> tuple[Page[JobSummary], dict[str, fleet.Health]]:  # fmt: skip
    """job_list_latest with each job's health, each state machine's baseline read once."""
    baselines: Baselines = {}
    page = job_list_latest(
        user=user, limit=limit, cursor=cursor, filters=filters, stuck=stuck, baselines=baselines,
        group_map_runs=group_map_runs,
    )  # fmt: skip
    return page, job_health(user=user, jobs=page.items, baselines=baselines)


def _unfinished(filters: JobFilter) -> JobFilter | None:
    """Only a job without a terminal status can be stuck: the store leaves out the others
    (None: every status asked for is terminal)."""
    asked = filters.wanted_statuses()
    unfinished = [s or "UNKNOWN" for s in asked if s not in TERMINAL_STATUSES]
    if not asked:
        unfinished = ["RUNNING", "PENDING_REDRIVE", "UNKNOWN"]
    return replace(filters, status=None, statuses=tuple(unfinished)) if unfinished else None


def _stuck_jobs(
    *, user, limit: int, cursor: str | None, filters: JobFilter, baselines: Baselines
) -> Page[JobSummary]:
    """Store pages of at least STUCK_PAGE jobs: stuck ones are rare."""

    def rows(jobs: list[JobSummary]) -> Iterator[tuple[JobSummary, JobSummary | None]]:
        verdicts = job_health(user=user, jobs=jobs, baselines=baselines)
        return ((job, job if verdicts[job.id].stuck else None) for job in jobs)

    store, accounts = get_store(), visible_accounts(user)
    return _scan(store, accounts, filters, size=max(limit, STUCK_PAGE), pages=STUCK_SCAN_PAGES,
                 limit=limit, cursor=cursor, rows=rows)  # fmt: skip


def job_health(
    *, user, jobs: list[JobSummary], now: datetime | None = None,
    baselines: Baselines | None = None,
) -> dict[str, fleet.Health]:  # fmt: skip
    """{job id: duration and stuck verdict}, each against its state machine's succeeded jobs
    (the same name in the same account and region) among those the user may see in the
    retention: one store read per state machine name, kept in `baselines` when given, so
    paging reads each once."""
    now = now or datetime.now(UTC)
    baselines = {} if baselines is None else baselines
    for machine in {job.state_machine for job in jobs} - set(baselines):
        baselines[machine] = state_machine_baselines(user=user, state_machine=machine, now=now)
    factor = settings.EDOBS_STUCK_FACTOR
    return {
        job.id: fleet.health(job, normal=_baseline(baselines, job), factor=factor, now=now)
        for job in jobs
    }


def _baseline(baselines: Baselines, job: JobSummary) -> fleet.Baseline:
    return baselines[job.state_machine].get((job.account, job.region), NO_BASELINE)


def state_machine_baselines(
    *, user, state_machine: str, now: datetime
) -> dict[tuple[str, str], fleet.Baseline]:
    """{(account, region): baseline} of the state machines of that name the user may see."""
    since = now - timedelta(hours=settings.EDOBS_RETENTION_HOURS)
    succeeded = get_store().state_machine_jobs(
        state_machine, accounts=visible_accounts(user), since=since, statuses=("SUCCEEDED",),
        limit=BASELINE_JOBS,
    )  # fmt: skip
    by_place: dict[tuple[str, str], list[JobSummary]] = defaultdict(list)
    for job in succeeded:
        by_place[(job.account, job.region)].append(job)
    return {place: fleet.baseline(jobs) for place, jobs in by_place.items()}


def state_machine_metrics(
    *, user, state_machine: str, since: datetime, until: datetime, bucket: timedelta
) -> dict:
    """Per-bucket counts and durations of a state machine's jobs (events.domain.fleet.metrics);
    ValueError when the range and bucket give no buckets or too many."""
    starts = fleet.bucket_starts(since, until, bucket)
    jobs = get_store().state_machine_jobs(
        state_machine, accounts=visible_accounts(user), since=starts[0],
        until=starts[-1] + bucket,
    )  # fmt: skip
    return fleet.metrics(jobs, starts=starts, size=bucket)


def job_get(*, user, job_id: str) -> JobSummary | None:
    """A job by its id (`ACCOUNT:REGION:STATE_MACHINE:NAME`) or a short form
    (`STATE_MACHINE:NAME`, or the bare execution name), resolved among the jobs the user may
    see, newest activity first. Unknown and not visible are the same answer: None, also for an
    id no job can have and no store can look up: too long for a key, with a NUL (PostgreSQL
    refuses it) or a lone surrogate."""
    try:
        size = len(job_id.encode())
    except UnicodeEncodeError:
        return None
    if size > MAX_JOB_ID or "\x00" in job_id:
        return None
    ref = parse_job_ref(job_id)
    return None if ref is None else job_resolve(user=user, ref=ref)


def job_resolve(*, user, ref: JobRef) -> JobSummary | None:
    store, accounts = get_store(), visible_accounts(user)
    if accounts == frozenset():
        return None
    if ref.full:
        return store.get_job(ref.id, accounts=accounts)
    return store.find_job(name=ref.name, state_machine=ref.state_machine, accounts=accounts)


class AmbiguousEvent(Exception):
    """The envelope id is an event in several of the accounts looked in: name the account."""


def event_get(*, user, event_id: str, account: str | None = None) -> NormalisedEvent | None:
    """One event by envelope id, among the accounts the user may see (or only `account`).

    Unknown and not visible are the same answer: None.  Raises AmbiguousEvent when the id is
    an event of several of those accounts.  A superuser who names no account is answered from
    the accounts edobs knows (granted to a team, EDOBS_ACCOUNT, EDOBS_SOURCE_ACCOUNTS): an
    event is found by (account, id), never by a scan.  The links edobs makes name the account.
    """
    accounts = visible_accounts(user)
    if account is not None:
        accounts = frozenset({account}) if accounts is None or account in accounts else None
        if accounts is None:
            return None
    elif accounts is None:
        accounts = _known_accounts()
    if not accounts:
        return None
    found = get_store().get_events(event_id, accounts=accounts)
    if len(found) > 1:
        raise AmbiguousEvent(", ".join(event.account for event in found))
    return found[0] if found else None


def _known_accounts() -> frozenset[str]:
    granted = TeamAccount.objects.values_list("account", flat=True).distinct()
    return frozenset([*granted, settings.EDOBS_ACCOUNT, *settings.EDOBS_SOURCE_ACCOUNTS])


def job_event_page(
    *, user, job: JobSummary, limit: int = 100, cursor: str | None = None
) -> Page[NormalisedEvent]:
    return get_store().job_events(
        job.id, accounts=visible_accounts(user), limit=limit, cursor=cursor
    )


def job_event_list(*, user, job: JobSummary, limit: int = JOB_EVENTS_MAX) -> list[NormalisedEvent]:
    """All of a job's events (paged through the store), up to `limit`, in causal order
    (events.domain.timeline.in_order: an answer never before its trigger, whatever the clocks
    say)."""
    from events.domain.timeline import in_order

    return in_order(job_events_stored(user=user, job=job, limit=limit))


def job_events_stored(*, user, job: JobSummary, limit: int) -> list[NormalisedEvent]:
    """A job's events in the store's order (`at`, then arrival), for what orders them itself."""
    events: list[NormalisedEvent] = []
    cursor = None
    while len(events) < limit:
        page = job_event_page(user=user, job=job, limit=500, cursor=cursor)
        events.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return events[:limit]


def state_lane_order(*, user, jobs: list[tuple[JobSummary, list[NormalisedEvent]]]) -> list[str]:
    """The lane order of the jobs' state machine (events.domain.lanes): from its STATE_ORDER_JOBS
    newest jobs the user may see plus the given ones (with their events), each read to its first
    page of events, so two jobs of the machine shown now get the same order."""
    machine, given = jobs[0][0].state_machine, {job.id for job, _ in jobs}
    recent = job_list_latest(user=user, limit=STATE_ORDER_JOBS, state_machine=machine).items
    sequences = [first_seen_states(in_order(events)) for _, events in jobs]
    for other in (job for job in recent if job.id not in given):
        page = job_event_page(user=user, job=other, limit=STATE_ORDER_EVENTS)
        sequences.append(first_seen_states(in_order(page.items)))
    return lane_order(sequences)


def job_timeline(*, user, job: JobSummary) -> dict:
    """The timeline of the job's events (in the lane order of its state machine), and a span for
    each execution it started (a nested execution or a Map Run,
    events.domain.maprun.child_spans)."""
    events = job_events_stored(user=user, job=job, limit=JOB_EVENTS_MAX)
    answer = timeline_of(events, state_order=state_lane_order(user=user, jobs=[(job, events)]))
    runs, nested = job_children(user=user, job=job)
    first_lane = max((span["fn_lane"] for span in answer["spans"]), default=-1) + 1
    first_row = max((span["row"] for span in answer["spans"]), default=-1) + 1
    answer["spans"] += maprun.child_spans(
        runs, nested, first_lane=first_lane, first_row=first_row
    )
    return answer


def architecture_graph(*, user, window: Window) -> dict:
    return get_store().architecture(window, accounts=visible_accounts(user))


def _matches(
    event: NormalisedEvent, window: Window, text: str, where: tuple[search.Where, ...] = ()
) -> bool:
    wanted = {
        "source": window.source,
        "detail_type": window.detail_type,
        "account": window.account,
        "job": window.job,
        "fn": window.fn,
    }
    if any(value and getattr(event, name) != value for name, value in wanted.items()):
        return False
    if not all(search.where_matches(event.detail, condition) for condition in where):
        return False
    return search.text_matches(event.id, event.detail, text)


def event_search_page(
    *, user, window: Window, text: str = "", limit: int = 100, cursor: str | None = None
) -> Page[NormalisedEvent]:
    """Raw events, newest first, filtered by the window's fields, its `where` conditions on the
    detail (events.domain.search) and a free-text search, a page at a time.

    Stores may push filters down (PostgreSQL narrows `where` by JSON containment and the text
    by trigrams, events.stores.orm.store); every one is checked again here, so every backend answers
    the same.
    """
    text = search.fold(text.strip())
    where = tuple(window.where)
    return get_store().events_page(
        replace(window, newest_first=True, text=text), accounts=visible_accounts(user),
        limit=limit, cursor=cursor, keep=lambda event: _matches(event, window, text, where),
    )  # fmt: skip


def event_search(*, user, window: Window, text: str = "") -> list[NormalisedEvent]:
    """The first `window.limit` (at most 500) events of event_search_page, for the events page."""
    page = event_search_page(user=user, window=window, text=text, limit=min(window.limit, 500))
    return page.items


def job_compare(*, user, a: JobSummary, b: JobSummary) -> dict:
    """Two visible jobs step by step (events.domain.compare)."""
    events_a = job_events_stored(user=user, job=a, limit=JOB_EVENTS_MAX)
    events_b = job_events_stored(user=user, job=b, limit=JOB_EVENTS_MAX)
    order = state_lane_order(user=user, jobs=[(a, events_a), (b, events_b)])
    return compare_jobs(events_a, events_b, state_order=order)


def job_compare_partner(*, user, job: JobSummary) -> JobSummary | None:
    """The job to compare `job` with by default (events.domain.compare.partner), among the newest
    jobs of its state machine the user may see."""
    recent = job_list_latest(user=user, limit=PARTNER_JOBS, state_machine=job.state_machine)
    return partner(job, recent.items)


def job_mermaid(*, user, job: JobSummary) -> str:
    """The job's timeline as a Mermaid Gantt chart (events.domain.export)."""
    return mermaid_gantt(f"{job.state_machine} {job.name}", job_timeline(user=user, job=job))


# ---- change over time (events.domain.drift): inferred schemas and their drift --------------------


def schema_list(*, user, windows) -> dict:
    """Every event type the user may see in either window, with its fields and drift count."""
    return drift_reads.schema_list(visible_accounts(user), windows)


def schema_detail(*, user, windows, source: str, detail_type: str) -> dict | None:
    """One event type's fields, drift and JSON Schema; None when neither window holds it."""
    accounts = visible_accounts(user)
    return drift_reads.schema_detail(accounts, windows, source=source, detail_type=detail_type)


def architecture_drift(*, user, graph: dict, window: Window) -> dict:
    """The graph with `drift` (fields drifted, events.domain.drift) on each event-type node: the
    window's types against the window of equal length just before (a window without an end
    ends now)."""
    since = window.since or datetime.now(UTC) - timedelta(hours=settings.EDOBS_RETENTION_HOURS)
    until = window.until or datetime.now(UTC)
    try:
        counts = drift_reads.drift_counts(visible_accounts(user), since, until)
    except (ValueError, OverflowError):  # an empty window, or a base before year 1
        counts = {}
    for node in graph["nodes"]:
        if node["kind"] == "event":
            node["drift"] = counts.get(node["id"], 0)
    return graph


def architecture_diff(*, user, window: Window, base: Window) -> dict:
    """What changed between the architecture of `base` and that of `window` (both scoped)."""
    graph = architecture_graph(user=user, window=window)
    return diff_architectures(graph=graph, base=architecture_graph(user=user, window=base))
