"""moto's server for bench/workers.py, with fixes to how fast it emulates SQS.

    .venv/bin/python bench/moto_server.py [--as-shipped] -H 127.0.0.1 -p PORT

moto 5 checks every message it hands out against the queue's retention period by calling
`get_queue_attributes(["MessageRetentionPeriod"])`, which builds *every* attribute of the queue
three times, approximate counts included (each a scan of all its messages): a receive of 10
costs 30 scans of the queue. py-spy put it at 34% of the server's CPU with one worker, so the
single moto process, sharing the bench machine's 2 cores with the workers, was what limited
them. The fix reads the same attribute directly. And the SQS model asks the time through
`unix_time()`, which builds two datetimes each call (so that freezegun can move it), several
times per message per scan: 23% of the server's CPU. The bench never moves the clock, so it gets
`time.time()`. And for every request, moto's server finds which backend a host is by listing its
own package folder on disk (about 200 `isdir` calls), under a lock every request takes: 16% of
its CPU with 4 workers. The answer for a host never changes, so it is kept. What moto answers is
unchanged. A real queue's cost is not on the workers' machine at all; these keep part of the
emulator's CPU out of the figure.
`--as-shipped` runs moto unpatched (bench/workers.py --moto-as-shipped).
"""

from __future__ import annotations

import logging
import sys


def patch() -> None:
    import time

    from moto.moto_server import werkzeug_app
    from moto.sqs import models

    def unix_time(dt=None) -> float:
        return time.time() if dt is None else real_unix_time(dt)

    def retained(self, queue_name: str, message) -> bool:
        period = self.get_queue(queue_name).message_retention_period
        return int(period) + message.sent_timestamp / 1000 > unix_time()

    real_unix_time = models.unix_time
    dispatcher = werkzeug_app.DomainDispatcherApplication
    real_backend_for_host = dispatcher.get_backend_for_host
    backends_by_host: dict = {}

    def backend_for_host(self, host):
        if host not in backends_by_host:
            backends_by_host[host] = real_backend_for_host(self, host)
        return backends_by_host[host]

    dispatcher.get_backend_for_host = backend_for_host
    models.unix_time = unix_time
    models.unix_time_millis = lambda dt=None: unix_time(dt) * 1000.0
    models.SQSBackend.is_message_valid_based_on_retention_period = retained


def main(argv: list[str]) -> None:
    if "--as-shipped" in argv:
        argv = [arg for arg in argv if arg != "--as-shipped"]
    else:
        patch()
        # Its request log goes to /dev/null in the bench, but werkzeug formats every line first.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.server import main as serve

    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
