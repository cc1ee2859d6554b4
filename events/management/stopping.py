"""How a long-running command stops: SIGTERM or SIGINT finishes the work in hand, then exits."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def stopped_by_signals(say: Callable[[], None]) -> Iterator[threading.Event]:
    """An event that SIGTERM or SIGINT sets (`say` runs at the first of them). The previous
    handlers come back on leaving: call_command (tests, the demo) must not keep ours."""
    stop = threading.Event()

    def handle(*_) -> None:
        if not stop.is_set():
            say()
        stop.set()

    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
