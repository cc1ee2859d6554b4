"""events.management.stopping: how consume_events and run_alerts stop on a signal."""

from __future__ import annotations

import os
import signal

from events.management.stopping import stopped_by_signals


def test_a_signal_stops_the_work_once_and_the_old_handlers_come_back():
    said: list[str] = []
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}

    with stopped_by_signals(lambda: said.append("stopping")) as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(5)

    assert said == ["stopping"]
    assert {signum: signal.getsignal(signum) for signum in before} == before
