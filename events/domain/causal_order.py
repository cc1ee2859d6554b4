"""The order an ingest batch is stored and published in (DESIGN section 9, "Time").

An answer whose trigger comes later in the same batch is moved just after it, so that it is
stored after it (the raw event search breaks ties of an envelope second by arrival) and sent
live after it. Everything else keeps its order in the batch.
"""

from __future__ import annotations

from events.domain.envelope import NormalisedEvent
from events.domain.timeline import triggers_of


def causal_batch(events: list[NormalisedEvent]) -> list[NormalisedEvent]:
    """The same events (the same objects, each once), each answer after its trigger."""
    by_job: dict[str | None, list[NormalisedEvent]] = {}
    for event in events:
        by_job.setdefault(event.job, []).append(event)
    trigger_of: dict[str, str] = {}
    for job, group in by_job.items():
        if job is not None:
            trigger_of.update((id, trigger.id) for id, trigger in triggers_of(group).items())
    return _after_triggers(events, trigger_of)


def _after_triggers(events: list[NormalisedEvent], trigger_of: dict[str, str]) -> list:
    pending = {event.id for event in events}
    waiting: dict[str, list[NormalisedEvent]] = {}
    ordered: list[NormalisedEvent] = []
    for event in events:
        trigger = trigger_of.get(event.id)
        if trigger in pending and trigger != event.id:
            waiting.setdefault(trigger, []).append(event)
            continue
        release = [event]
        while release:
            done = release.pop(0)
            pending.discard(done.id)
            ordered.append(done)
            release[:0] = waiting.pop(done.id, [])
    placed = {id(event) for event in ordered}
    return ordered + [event for event in events if id(event) not in placed]  # cycles, as sent
