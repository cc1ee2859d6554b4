"""A fault-injecting HTTP proxy in front of moto's server: DynamoDB throttling, on demand.

moto never throttles, and the project forbids hand-written fakes of AWS. So, like toxiproxy,
this proxy sits on 127.0.0.1 between the code under test and the real emulator: every request
is forwarded to moto unchanged and moto's own answer relayed, byte for byte. Only while the test
holds a throttle window open do DynamoDB requests (told apart by their
`X-Amz-Target: DynamoDB_20120810.<Operation>` header) get DynamoDB's documented throttling:

- TransactWriteItems is refused with HTTP 400: ProvisionedThroughputExceededException,
  ThrottlingException, or TransactionCanceledException whose CancellationReasons carry
  `ThrottlingError` (a seeded mix); nothing is forwarded, so nothing is written.
- BatchWriteItem / BatchGetItem forward only the first half of each table's requests or keys;
  moto's answer comes back with the other half under UnprocessedItems / UnprocessedKeys, which
  is what DynamoDB does when part of a batch is throttled. A batch of one cannot be split and
  is forwarded whole, so that a caller which retries what comes back always makes progress.

Every successful answer therefore comes from moto: the proxy only withholds work (and says so,
the way DynamoDB says so); it never invents data. Everything else (SQS calls, other DynamoDB
operations, any request outside the window) is plain forwarding.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import threading
import time
import uuid
import zlib
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

TARGET_PREFIX = "DynamoDB_20120810."
ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
JSON_TYPE = "application/x-amz-json-1.0"
UPSTREAM_TIMEOUT = 60.0  # outlasts an SQS long poll (20 s at most)
# Hop-by-hop headers, and the length we recompute after reading the body whole.
DROPPED = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
THROTTLE_MESSAGE = (
    "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API."
)
THROTTLE_REASON = "Throughput exceeds the current capacity of your table or index."


class ThrottleProxy:
    """proxy = ThrottleProxy(moto_url).start(); proxy.url; with proxy.throttling(): ...

    `refused[op]` counts requests answered with a throttling error (nothing forwarded),
    `partial[op]` requests forwarded in part, `withheld[op]` the items/keys given back.
    """

    def __init__(self, upstream: str, *, seed: int = 0) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.refused: Counter[str] = Counter()
        self.partial: Counter[str] = Counter()
        self.withheld: Counter[str] = Counter()
        self.forwarded = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._window = threading.Event()
        # moto's transact_write_items deep-copies the table while other threads write to it
        # ("dictionary changed size during iteration", HTTP 500): DynamoDB calls go one at a time.
        self.dynamodb_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- control (from the test) -----------------------------------------------------------

    def start(self) -> ThrottleProxy:
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="throttle-proxy", daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def throttling_now(self) -> bool:
        return self._window.is_set()

    @contextmanager
    def throttling(self):
        """Throttle DynamoDB for the duration of the block."""
        self._window.set()
        try:
            yield self
        finally:
            self._window.clear()

    def throttle(self, *, seconds: float) -> None:
        """Throttle DynamoDB for `seconds`, blocking the caller meanwhile."""
        with self.throttling():
            time.sleep(seconds)

    def close(self) -> None:
        self._window.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> ThrottleProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- the faults (called from handler threads) ------------------------------------------

    def _choose(self, options: list[str]) -> str:
        with self._lock:
            return self._rng.choice(options)

    def _count(self, counter: Counter[str], operation: str, amount: int = 1) -> None:
        with self._lock:
            counter[operation] += amount

    def refusal(self, operation: str, request: dict) -> tuple[int, dict]:
        """A throttling error for a whole TransactWriteItems."""
        self._count(self.refused, operation)
        kind = self._choose(
            ["ProvisionedThroughputExceededException", "ThrottlingException", "cancelled"]
        )
        if kind != "cancelled":
            return 400, _error(kind, THROTTLE_MESSAGE if "Provisioned" in kind else "Rate exceeded")
        actions = request.get("TransactItems") or [{}]
        throttled = {self._choose(list(range(len(actions))))}
        reasons = [
            {"Code": "ThrottlingError", "Message": THROTTLE_REASON}
            if index in throttled
            else {"Code": "None"}
            for index in range(len(actions))
        ]
        codes = ", ".join(reason["Code"] for reason in reasons)
        message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]"  # noqa: E501
        body = _error("TransactionCanceledException", message)
        body["CancellationReasons"] = reasons
        return 400, body

    def split(self, operation: str, request: dict) -> tuple[dict, dict] | None:
        """(what to forward, what to give back), or None when nothing can be forwarded."""
        field = "Keys" if operation == "BatchGetItem" else None
        forward: dict = {}
        withheld: dict = {}
        for table, entry in request.get("RequestItems", {}).items():
            items = entry[field] if field else entry
            keep = len(items) // 2
            if keep:
                forward[table] = {**entry, field: items[:keep]} if field else items[:keep]
            rest = items[keep:]
            withheld[table] = {**entry, field: rest} if field else rest
        if not forward:
            return None
        count = sum(len(v[field] if field else v) for v in withheld.values())
        self._count(self.partial, operation)
        self._count(self.withheld, operation, count)
        return {**request, "RequestItems": forward}, withheld


class _Handler(BaseHTTPRequestHandler):
    """Forwards one request; during a throttle window, throttles the DynamoDB ones."""

    proxy: ThrottleProxy
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every answer.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        self._handle()

    do_GET = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_POST

    def log_message(self, format: str, *args) -> None:  # noqa: A002  (the base's name)
        logger.debug("proxy: " + format, *args)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        target = self.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
        if not operation:
            self._relay(*self._forward(body))
            return
        with self.proxy.dynamodb_lock:
            if self.proxy.throttling_now:
                self._throttle(operation, body)
            else:
                self._relay(*self._forward(body))

    def _throttle(self, operation: str, body: bytes) -> None:
        if operation not in ("TransactWriteItems", "BatchWriteItem", "BatchGetItem"):
            self._relay(*self._forward(body))
            return
        request = json.loads(body)
        if operation == "TransactWriteItems":
            self._answer(*self.proxy.refusal(operation, request))
            return
        split = self.proxy.split(operation, request)
        if split is None:  # a batch of one
            self._relay(*self._forward(body))
            return
        forward, withheld = split
        status, headers, answer = self._forward(json.dumps(forward).encode())
        if status != 200:  # moto refused the part: relay its answer as it is
            self._relay(status, headers, answer)
            return
        data = json.loads(answer)
        key = "UnprocessedKeys" if operation == "BatchGetItem" else "UnprocessedItems"
        data[key] = _merge(data.get(key) or {}, withheld, operation)
        self._answer(200, data, headers)

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request to moto as it came; moto's status, headers and whole body."""
        connection = http.client.HTTPConnection(*self.proxy.upstream, timeout=UPSTREAM_TIMEOUT)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in DROPPED}
            headers["Content-Length"] = str(len(body))
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            with self.proxy._lock:
                self.proxy.forwarded += 1
            return response.status, response.getheaders(), answer
        finally:
            connection.close()

    def _relay(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in DROPPED and name.lower() not in ("server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _answer(self, status: int, data: dict, headers: list | None = None) -> None:
        """A JSON answer in DynamoDB's form, its x-amz-crc32 matching the new body."""
        body = json.dumps(data).encode()
        keep = [(k, v) for k, v in headers or [] if k.lower() not in ("x-amz-crc32",)]
        if not any(k.lower() == "content-type" for k, _ in keep):
            keep.append(("Content-Type", JSON_TYPE))
        if not any(k.lower() == "x-amzn-requestid" for k, _ in keep):
            keep.append(("x-amzn-RequestId", uuid.uuid4().hex.upper()))
        keep.append(("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF)))
        self._relay(status, keep, body)


def _error(code: str, message: str) -> dict:
    return {"__type": ERROR_PREFIX + code, "message": message}


def _merge(unprocessed: dict, withheld: dict, operation: str) -> dict:
    """moto's own UnprocessedKeys/Items (if any) plus what the proxy held back."""
    merged = dict(unprocessed)
    for table, entry in withheld.items():
        if operation == "BatchGetItem":
            if not entry["Keys"]:
                continue
            keys = (merged.get(table) or {}).get("Keys", []) + entry["Keys"]
            merged[table] = {**entry, "Keys": keys}
        elif entry:
            merged[table] = (merged.get(table) or []) + entry
    return merged
