"""The alerts loop: evaluation and delivery in separate threads (events.alerts)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import connections
from django.utils import timezone

from events.alerts import deliver, evaluate

logger = logging.getLogger(__name__)

POSTERS = 4  # webhooks posted at once: one slow webhook delays no other


@dataclass
class Totals:
    fired: int = 0
    attempts: int = 0

    def summary(self) -> str:
        return f"alerts: {self.fired} fired, {self.attempts} delivery attempts"


class AlertRunner:
    """`run()` evaluates every EDOBS_ALERT_INTERVAL_SECONDS in the calling thread while a
    delivery thread posts what is due, sleeping until the next retry is due (woken early when
    a rule fires or an attempt ends), until `stop` is set."""

    def __init__(self, stop: threading.Event | None = None):
        self.stop = stop or threading.Event()
        self.wake = threading.Event()
        self.totals = Totals()
        self._lock = threading.Lock()

    def run(self, *, once: bool = False) -> Totals:
        if once:
            return self.run_once()
        poster = threading.Thread(target=self._deliver_loop, name="edobs-alerts-deliver")
        poster.start()
        try:
            while not self.stop.is_set():
                self._evaluate()
                self.stop.wait(settings.EDOBS_ALERT_INTERVAL_SECONDS)
        finally:
            self.stop.set()
            self.wake.set()
            poster.join()
            connections.close_all()
        return self.totals

    def run_once(self) -> Totals:
        """Evaluate once and make the attempts due now (retries due later are left)."""
        self._evaluate()
        while ids := deliver.due(now=timezone.now()):
            for firing_id in ids:
                if firing := deliver.claim(firing_id, now=timezone.now()):
                    self._attempt(firing)
        return self.totals

    def _evaluate(self) -> None:
        try:
            fired = evaluate.evaluate_rules(now=timezone.now())
        except Exception:  # the database went away: say so, try again next round
            logger.exception("alert evaluation failed")
            connections.close_all()
            return
        self.totals.fired += fired
        if fired:
            self.wake.set()

    def _deliver_loop(self) -> None:
        with ThreadPoolExecutor(POSTERS, thread_name_prefix="edobs-alerts-post") as pool:
            while not self.stop.is_set():
                self.wake.clear()
                try:
                    for firing_id in deliver.due(now=timezone.now()):
                        if firing := deliver.claim(firing_id, now=timezone.now()):
                            pool.submit(self._post, firing)
                    self.wake.wait(self._idle_seconds())
                except Exception:
                    logger.exception("alert delivery loop failed; retrying")
                    connections.close_all()
                    self.stop.wait(settings.EDOBS_ALERT_INTERVAL_SECONDS)
        connections.close_all()

    def _idle_seconds(self) -> float:
        """Until the next retry is due, at most one evaluation interval (another process may
        fire meanwhile)."""
        interval = float(settings.EDOBS_ALERT_INTERVAL_SECONDS)
        upcoming = deliver.next_due()
        if upcoming is None:
            return interval
        return max(0.0, min(interval, (upcoming - timezone.now()).total_seconds()))

    def _post(self, firing) -> None:
        try:
            self._attempt(firing)
        except Exception:
            logger.exception("alert %s: the attempt could not be recorded", firing)
        finally:
            connections.close_all()
            self.wake.set()

    def _attempt(self, firing) -> None:
        deliver.attempt(firing)
        with self._lock:
            self.totals.attempts += 1


def start_alerts_thread(stop: threading.Event) -> threading.Thread:
    """The alerts loop in a daemon thread of this process (manage.py demo)."""

    def run() -> None:
        try:
            AlertRunner(stop).run()
        except Exception:
            logger.exception("the alerts loop stopped")

    thread = threading.Thread(target=run, name="edobs-alerts", daemon=True)
    thread.start()
    return thread
