"""Read a real GET /metrics answer as {(name, labels): value} (tests of events.metrics)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client) -> Samples:
    """The samples of every process, through the view, from 127.0.0.1 (allowed by default)."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.status_code
    return parse(response.content.decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def names(samples: Samples) -> set[str]:
    """The family names: a counter's samples end in _total, a histogram's in _bucket ..."""
    return {name for name, _ in samples}


def own(tmp_dir) -> Samples:
    """This process's samples only, read from its own files in PROMETHEUS_MULTIPROC_DIR with
    prometheus-client's own collector: other pytest workers write to the same directory."""
    target = Path(tmp_dir)
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.db"):
        old.unlink()
    for path in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob(f"*_{os.getpid()}.db"):
        shutil.copy(path, target / path.name)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(target))
    return parse(generate_latest(registry).decode())
