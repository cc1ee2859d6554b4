"""The ingest loop in a thread of the server process (`manage.py demo`, single-process mode).

Apart from events.live.connections so that the live layer never imports the worker: ingest publishes
to the live layer (events.live.broadcast), not the other way round.
"""

from __future__ import annotations

import logging
import threading

from events.ingest.worker import Worker

logger = logging.getLogger(__name__)

RESTART = 5.0  # seconds before the in-process worker starts again after a crash


def start_inprocess_worker(stop: threading.Event, **worker_options) -> threading.Thread:
    """Run the ingest loop in a daemon thread of this (server) process.

    For the single-process demo with the in-memory channel layer: the worker thread publishes
    on the server's event loop (see events.live.broadcast), so consumers in this process get every
    new event.  Stop it by setting `stop`; it finishes the batch in hand.
    """
    worker_options.setdefault("wait_seconds", 1)
    worker = Worker(stop=stop, **worker_options)
    thread = threading.Thread(target=_run_worker, args=(worker,), name="edobs-ingest", daemon=True)
    thread.start()
    return thread


def _run_worker(worker) -> None:
    """Run the worker until stopped. Its loop survives any batch; should it still raise, it
    is logged and started again: a dead thread would leave the pages "live" and empty."""
    try:
        while not worker.stop.is_set():
            try:
                totals = worker.run()
                logger.info("in-process worker stopped: %s", totals.summary())
            except Exception:
                logger.exception("in-process worker crashed; restarting it in %.0fs", RESTART)
                worker.stop.wait(RESTART)
    finally:
        from django.db import connections

        connections.close_all()
