"""Replay: put an event, or a job's events, back on a bus (DESIGN section 9, "Change over time").

Each event is put again with its original source, detail-type and detail, and
`detail.meta.replayOf = {"event", "job", "account", "replay"}` (the original envelope id, its
job id, its account, and the replay's short id).

So that the replayed events form a NEW job instead of merging into the original one, every
field that correlation (events.domain.correlation) reads the execution name from is renamed to
`<name>-replay-<short id>`: `execution` and `executionArn` (the name part of the ARN),
`executionContext` (`id`, `name`, `context.Execution.Id/Name`) and `meta.job`. edobs then links
the new job to the original through `meta.replayOf.job` (events.domain.replay_marks.replay_of).

Times keep their shape: every event's envelope `Time` and its `meta.emittedAt` (the producer's
clock, events.domain.clock) move by the same offset, so that the first replayed event happens now
and the job's timeline looks like the original's.

Events of `aws.*` sources (Step Functions' own status events) are skipped and counted: EventBridge
refuses PutEvents from a source starting with `aws.`. Entries go in batches of at most 10 and
256 KiB (PutEvents' limits); an entry over 256 KiB alone fails here without being sent. A
`meta.incoming.id` naming another replayed event is rewritten to that replay's new envelope id
(an entry waits for the call that sends its trigger), so the new job's spans pair as exactly as
the original's; a dry run shows the entries before that rewrite. Per-entry
failures in PutEvents' answer are counted; an error of a whole call counts its batch as failed,
and the first error is recorded.

Whose data a replayed event is: EventBridge stamps the envelope with the account that PutEvents
ran in (moto leaves it out), never the original's. Ingest stores a replayed event under
`meta.replayOf.account` only when `meta.replayOf.replay` names a Replay recorded here that sent
that very original event with that very detail (its digest, origin_accounts): so a producer
cannot claim another account by writing `replayOf` itself, nor by copying the claim of a
replayed event it saw on the bus onto content of its own. The Replay row is written before
anything is sent, so a worker that reads the replayed event at once finds it. Replays go only
to the buses EDOBS_REPLAY_BUSES names.
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from events.aws import events_client
from events.domain.correlation import job_id as make_job_id
from events.domain.envelope import NormalisedEvent, is_account, with_account
from events.domain.replay_marks import (  # noqa: F401  (replay_of, replay_of_job: re-exported)
    replay_of,
    replay_of_job,
    replayed_digest,
)
from events.domain.summary import JobSummary
from events.models import Replay

logger = logging.getLogger(__name__)

BATCH = 10
MAX_REQUEST_BYTES = 256 * 1024
REFUSED_SOURCE_PREFIX = "aws."
PERMISSION = "events.replay_event"


@dataclass
class Outcome:
    entries: list[dict[str, Any]]
    skipped: int
    new_job: str | None
    details: list[dict[str, Any]] = field(default_factory=list)  # each entry's detail
    originals: list[str] = field(default_factory=list)  # each entry's original event id
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def bus_allowed(bus: str) -> bool:
    """Whether replays may go to `bus`: exactly one of EDOBS_REPLAY_BUSES (names or ARNs)."""
    return bus in settings.EDOBS_REPLAY_BUSES


def bus_refusal(bus: str) -> str:
    allowed = ", ".join(settings.EDOBS_REPLAY_BUSES)
    return f"{bus!r} is not a replay bus: EDOBS_REPLAY_BUSES allows {allowed}"


def _claim(event: NormalisedEvent) -> tuple[str, str, str] | None:
    """(replay short id, original account, original event id) a replayed event claims."""
    found = replay_of(event.detail)
    if not found:
        return None
    claim = (found.get("replay"), found.get("account"), found.get("event"))
    if not all(isinstance(part, str) and part for part in claim) or not is_account(claim[1]):
        return None
    return claim  # type: ignore[return-value]


def origin_accounts(events: Sequence[NormalisedEvent]) -> list[str | None]:
    """For each event, the original account it is stored under when it is the replay of an
    event that a recorded Replay sent, with the content it sent (one query for the batch, none
    without `replayOf`)."""
    claims = [_claim(event) for event in events]
    shorts = {claim[0] for claim in claims if claim}
    if not shorts:
        return [None] * len(events)
    rows = Replay.objects.filter(short__in=shorts, dry_run=False)
    recorded = dict(
        item
        for row in rows.values_list("short", "account", "originals", "digests")
        for item in _recorded(*row)
    )
    return [
        claim[1]
        if claim in recorded and recorded[claim] in (None, replayed_digest(event.detail))
        else None
        for event, claim in zip(events, claims, strict=True)
    ]


def _recorded(short: str, account: str, originals, digests):
    """((short, account, original), digest of the detail sent) of one Replay row; the digest is
    None for a replay recorded before digests were (any content claims it, as then)."""
    originals = originals if isinstance(originals, list) else []
    if not isinstance(digests, list) or len(digests) != len(originals):
        digests = [None] * len(originals)
    for original, digest in zip(originals, digests, strict=True):
        yield (short, account, original), digest


def attributed(events: Sequence[NormalisedEvent]) -> list[NormalisedEvent]:
    """The events, each recorded replay moved to its original account (origin_accounts)."""
    return [
        event if account is None or account == event.account else with_account(event, account)
        for event, account in zip(events, origin_accounts(events), strict=True)
    ]


def _renamed_arn(arn: Any, suffix: str) -> Any:
    """An execution ARN (standard or express) with its name part renamed; others unchanged."""
    if not isinstance(arn, str):
        return arn
    parts = arn.split(":")
    if len(parts) >= 8 and parts[:3] == ["arn", "aws", "states"]:
        if parts[5] in ("execution", "express"):
            parts[7] = f"{parts[7]}{suffix}"
            return ":".join(parts)
    return arn


def _rename(detail: dict[str, Any], suffix: str) -> None:
    for key in ("execution", "executionArn"):
        if key in detail:
            detail[key] = _renamed_arn(detail[key], suffix)
    context = detail.get("executionContext")
    if isinstance(context, dict):
        if "id" in context:
            context["id"] = _renamed_arn(context["id"], suffix)
        if isinstance(context.get("name"), str):
            context["name"] += suffix
        execution = (context.get("context") or {}).get("Execution")
        if isinstance(execution, dict):
            execution["Id"] = _renamed_arn(execution.get("Id"), suffix)
            if isinstance(execution.get("Name"), str):
                execution["Name"] += suffix
    meta = detail.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("job"), str):
        meta["job"] += suffix


def replayed_detail(
    event: NormalisedEvent, *, job: str | None, short: str, shift: timedelta
) -> dict[str, Any]:
    """The detail to put again: renamed into the replay's job, stamped with `meta.replayOf`."""
    detail = copy.deepcopy(event.detail) if isinstance(event.detail, dict) else {}
    if job is not None:
        _rename(detail, f"-replay-{short}")
    meta = detail.get("meta")
    if not isinstance(meta, dict):
        meta = detail["meta"] = {}
    emitted = meta.get("emittedAt")
    if isinstance(emitted, int | float) and not isinstance(emitted, bool):
        meta["emittedAt"] = int(emitted + shift.total_seconds() * 1000)
    meta["replayOf"] = {"event": event.id, "job": job, "account": event.account, "replay": short}
    return detail


def plan(
    events: Sequence[NormalisedEvent], *, job: JobSummary | None, bus: str,
    now: datetime | None = None, short: str | None = None,
) -> Outcome:  # fmt: skip
    """The PutEvents entries of a replay (nothing is sent)."""
    short = short or uuid.uuid4().hex[:8]
    replayable = [e for e in events if not e.source.startswith(REFUSED_SOURCE_PREFIX)]
    now = now or datetime.now(UTC)
    shift = now - min((e.at for e in replayable), default=now)
    outcome = Outcome([], len(events) - len(replayable), _new_job(events, job, short))
    for event in replayable:
        job_of = event.job if job is None else job.id
        detail = replayed_detail(event, job=job_of, short=short, shift=shift)
        outcome.entries.append({
            "Source": event.source, "DetailType": event.detail_type, "Detail": json.dumps(detail),
            "Resources": [r for r in event.resources if isinstance(r, str)],
            "Time": event.time + shift, "EventBusName": bus,
        })  # fmt: skip
        outcome.details.append(detail)
        outcome.originals.append(event.id)
    return outcome


def _new_job(events: Sequence[NormalisedEvent], job: JobSummary | None, short: str) -> str | None:
    """The job id the replayed events will correlate to, if the bus is in the same account."""
    if job is not None:
        return make_job_id(job.account, job.region, job.state_machine, f"{job.name}-replay-{short}")
    execution = events[0].correlation.execution if events else None
    if execution is None:
        return None
    name = f"{execution.name}-replay-{short}"
    return make_job_id(events[0].account, events[0].region, execution.state_machine, name)


def _size(entry: dict[str, Any]) -> int:
    """PutEvents' entry size: source, detail-type, detail and resources in UTF-8, plus time."""
    texts = [entry["Source"], entry["DetailType"], entry["Detail"], *entry["Resources"]]
    return sum(len(text.encode("utf-8", "surrogatepass")) for text in texts) + 14


def _incoming_id(detail: dict[str, Any]) -> str | None:
    incoming = detail.get("meta", {}).get("incoming")
    found = incoming.get("id") if isinstance(incoming, dict) else None
    return found if isinstance(found, str) else None


def batches(outcome: Outcome) -> tuple[list[list[int]], int]:
    """The entries' indices in PutEvents calls: at most BATCH entries and MAX_REQUEST_BYTES a
    call, and an entry whose trigger (`meta.incoming.id`) is in the same call starts a new one,
    so that the trigger's new id is known when it is sent. Also: how many entries are too large
    to be sent at all."""
    groups: list[list[int]] = []
    size, too_large = 0, 0
    for index, entry in enumerate(outcome.entries):
        entry_size = _size(entry)
        if entry_size > MAX_REQUEST_BYTES:
            too_large += 1
            continue
        pending = {outcome.originals[i] for i in groups[-1]} if groups else set()
        full = not groups or len(groups[-1]) == BATCH or size + entry_size > MAX_REQUEST_BYTES
        if full or _incoming_id(outcome.details[index]) in pending:
            groups.append([])
            size = 0
        groups[-1].append(index)
        size += entry_size
    return groups, too_large


def send(outcome: Outcome, client=None) -> Outcome:
    """Put the entries; each `meta.incoming.id` that names a replayed event is rewritten to the
    id EventBridge gave its replay, so the new job's spans pair exactly as the original's."""
    groups, too_large = batches(outcome)
    if too_large:
        outcome.failed += too_large
        outcome.errors.append(f"{too_large} entries over {MAX_REQUEST_BYTES} bytes not sent")
    client = client or events_client()
    new_ids: dict[str, str] = {}
    for group in groups:
        entries = [_relinked(outcome, index, new_ids) for index in group]
        try:
            answer = client.put_events(Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("replay: PutEvents of %d entries failed: %s", len(group), exc)
            outcome.failed += len(group)
            outcome.errors.append(str(exc))
            continue
        for index, item in zip(group, answer.get("Entries", []), strict=False):
            if item.get("ErrorCode"):
                outcome.failed += 1
                outcome.errors.append(f"{item['ErrorCode']}: {item.get('ErrorMessage', '')}")
            else:
                outcome.sent += 1
                new_ids[outcome.originals[index]] = item.get("EventId", "")
    return outcome


def _relinked(outcome: Outcome, index: int, new_ids: dict[str, str]) -> dict[str, Any]:
    detail, entry = outcome.details[index], outcome.entries[index]
    wanted = _incoming_id(detail)
    if wanted not in new_ids:
        return entry
    detail["meta"]["incoming"]["id"] = new_ids[wanted]
    return {**entry, "Detail": json.dumps(detail)}


def replay_record(
    *, user, events: Sequence[NormalisedEvent], job: JobSummary | None, event_id: str = "",
    bus: str, dry_run: bool,
) -> tuple[Replay, Outcome]:  # fmt: skip
    """Replay (or, dry, only plan) and record it. The caller checked the permission, that the
    user may see the event or job, and that the bus is allowed (bus_allowed).

    The record is written before anything is sent: a worker may read a replayed event before
    PutEvents even answers, and ingest trusts its `replayOf` only once the record exists."""
    short = uuid.uuid4().hex[:8]
    outcome = plan(events, job=job, bus=bus, short=short)
    record = Replay.objects.create(
        user=user, username=user.get_username(), event_id=event_id,
        job_id=job.id if job else "", account=job.account if job else events[0].account,
        new_job=outcome.new_job or "", bus=bus, dry_run=dry_run, short=short,
        originals=list(outcome.originals),
        digests=[replayed_digest(detail) for detail in outcome.details],
        entries=len(outcome.entries),
        skipped=outcome.skipped,
    )  # fmt: skip
    if not dry_run:
        send(outcome)
    record.sent, record.failed = outcome.sent, outcome.failed
    record.error = "\n".join(outcome.errors)[:10_000]
    record.save(update_fields=["sent", "failed", "error"])
    return record, outcome
