"""Live-stream fan-out against the machine's limit for Python WebSockets.

    .venv/bin/python bench/fanout.py [--clients 100] [--seconds 5] [--procs 4] [--no-profile]

Every run here has the same parts: a redis-server (started here, on a free port), N clients on
`/ws/events/` (asyncio + `websockets`, no compression, spread over --procs client processes with
a loop each) and one producer publishing events through `events.live.broadcast.publish_events` (what
the worker calls after each stored batch: the frames are encoded there, once, and published on
the Redis pub/sub channel layer) in batches of 10.  Only the server changes:

1. capacity of edobs: one daphne process; the producer offers --offer frames/s (far more than
   any server here carries); frames/s is every event frame the clients got, per second;
2. the limit: bench/ws_broadcaster.py, a minimal broadcaster on the `websockets` library that
   reads the same Redis channel and sends the same frames, with the same clients and offer.
   edobs's frames/s over its frames/s is the target ratio (>= 0.5);
3. latency: edobs, then the broadcaster, at half the events/s edobs carried; p99 of "publish
   called" (just after the store's commit in the worker) to "received by every client", exact
   nearest rank over every event (target: edobs's p99 < 250 ms);
4. two daphne processes behind one port under supervisord (`fcgi-program`: supervisord binds
   the socket and each daphne serves it with `--fd 0`, the deployment Channels documents),
   sharing the Redis layer; frames/s against one process's;
5. a profile (py-spy, sampling daphne without stopping it) of a capacity run: the share of
   daphne's busy samples in each library, and the per-frame functions only a patch of that
   library would remove.

The server's CPU (cores used while producing) is read from /proc for each run.
All processes read the same system-wide monotonic clock (CLOCK_MONOTONIC on Linux).
`run()` (for `make bench`) runs this file in a subprocess, so its Django settings (Redis layer,
scratch SQLite) never mix with other benches, and returns bench.common figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    CPUS,
    constant,
    figure,
    limit,
    machine_cores,
    machine_cpu,
    percentile,
)

P99_TARGET_MS = 250.0
RATIO_TARGET = 0.5
ACCOUNT = "123456789012"
PREFIX = '{"type":"event","event":{"id":"'
BATCH = 10
BIN = Path(sys.executable).parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0, help="producing time per run")
    parser.add_argument("--offer", type=float, default=100_000, help="frames/s offered")
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--json", action="store_true", help="print run()'s dict as JSON only")
    args = parser.parse_args()
    results = measure(
        clients=args.clients, seconds=args.seconds, offer=args.offer, procs=args.procs,
        profile=not args.no_profile, log=sys.stderr if args.json else sys.stdout,
    )  # fmt: skip
    if args.json:
        print(json.dumps(results))
    else:
        for name, entry in results.items():
            print(f"{name:<36} {entry['value']:>10} {entry['unit']:<9} ratio {entry['ratio']}")
    return 0


def run(clients: int = 100, seconds: float = 5.0, offer: float = 100_000, profile: bool = True):
    """For bench/run.py: measure in a fresh interpreter and return the figures."""
    cmd = [sys.executable, __file__, "--json", "--clients", str(clients), "--seconds",
           str(seconds), "--offer", str(offer)] + ([] if profile else ["--no-profile"])  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError("fanout bench failed (its log is above)")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- the whole comparison ------------------------------------------------------------------


def measure(*, clients: int, seconds: float, offer: float, procs: int = 4, profile: bool = True,
            log=sys.stdout) -> dict:  # fmt: skip
    from tests.services import RedisServer

    def say(text: str) -> None:
        print(text, file=log, flush=True)

    redis = RedisServer().start()
    var_dir = Path(tempfile.mkdtemp(prefix="edobs-fanout-"))
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "edobs_site.settings", "EDOBS_VAR_DIR": str(var_dir),
        "REDIS_URL": redis.url, "DJANGO_SECRET_KEY": "fanout-bench", "EDOBS_LOG_LEVEL": "WARNING",
        "EDOBS_WS_MAX_PER_USER": "0", "PYTHONPATH": str(ROOT),  # every client is one user
    }  # fmt: skip
    env.pop("DATABASE_URL", None)
    os.environ.update(env)
    session_key = setup_django()
    from events.live.groups import ALL

    channel = f"asgi__group__{ALL}"  # where channels_redis's pub/sub layer publishes the group
    rate = offer / clients  # events/s offered
    common = dict(session_key=session_key, clients=clients, seconds=seconds, procs=procs)
    found: dict[str, dict] = {}
    try:
        with daphne(env, var_dir) as (port, pids):
            found["edobs"] = session(port, pids, rate=rate, **common)
            say(describe("edobs, 1 daphne", found["edobs"]))
        with broadcaster(env, redis.url, channel) as (port, pids):
            found["limit"] = session(port, pids, rate=rate, **common)
            say(describe("websockets broadcaster", found["limit"]))
        half = 0.5 * found["edobs"]["frames_per_s"] / clients
        with daphne(env, var_dir) as (port, pids):
            found["edobs_half"] = session(port, pids, rate=half, **common)
            say(describe(f"edobs at {half:.0f} events/s", found["edobs_half"]))
        with broadcaster(env, redis.url, channel) as (port, pids):
            found["limit_half"] = session(port, pids, rate=half, **common)
            say(describe(f"broadcaster at {half:.0f} events/s", found["limit_half"]))
        with supervised(env, var_dir, processes=2) as (port, pids):
            found["two"] = session(port, pids, rate=rate, **common)
            say(describe("edobs, 2 daphne under supervisord", found["two"]))
        if profile and pyspy():
            with daphne(env, var_dir) as (port, pids):
                found["profile"] = profiled(port, pids[0], var_dir, rate=rate, **common)
            say(profile_table(found["profile"]))
    finally:
        redis.close()
    return figures(found, clients)


def figures(found: dict, clients: int) -> dict:
    edobs, base = found["edobs"], found["limit"]
    ws_limit = limit(
        "websockets_broadcaster_frames_per_s", base["frames_per_s"], "frames/s",
        f"bench/ws_broadcaster.py (websockets.broadcast from the same Redis channel), same "
        f"{clients} clients in the same client processes, same frames and offer, same run",
    )  # fmt: skip
    one = limit("edobs_1_daphne_frames_per_s", edobs["frames_per_s"], "frames/s",
                "one daphne process, same clients and offer, same run")  # fmt: skip
    half = found["limit_half"]
    half_limit = limit(
        "websockets_broadcaster_p99_ms_same_rate", half["p99_ms"], "ms",
        f"the broadcaster at the same {half['rate']:.0f} events/s, same clients, same run",
    )  # fmt: skip
    prefix = f"fanout_{clients}_clients"
    results = {
        f"{prefix}_frames_per_s": figure(
            edobs["frames_per_s"], "frames/s", limit=ws_limit, target=RATIO_TARGET
        ),
        f"{prefix}_server_cores": figure(
            edobs["server_cores"],
            "cores",
            higher_is_better=False,
            limit=limit(
                "websockets_broadcaster_cores",
                base["server_cores"],
                "cores",
                "the broadcaster's CPU over the same kind of run",
            ),
        ),  # fmt: skip
        **{
            f"{prefix}_{name}machine_cores": figure(
                found[run]["machine_cores"],
                "cores",
                higher_is_better=False,
                limit=constant(
                    "machine_cores",
                    CPUS,
                    "cores",
                    "every core of this machine (/proc/stat busy time: server, clients, "
                    "Redis, producer and anything else), same interval",
                ),
            )  # fmt: skip
            for run, name in (("edobs", ""), ("limit", "broadcaster_"), ("two", "2_daphne_"))
        },
        f"{prefix}_p99_at_half_rate": figure(
            found["edobs_half"]["p99_ms"],
            "ms",
            limit=half_limit,
            target=P99_TARGET_MS,
            target_on="value",
            higher_is_better=False,
        ),  # fmt: skip
        f"{prefix}_p50_at_half_rate": figure(
            found["edobs_half"]["p50_ms"],
            "ms",
            higher_is_better=False,
            limit=limit(
                "websockets_broadcaster_p50_ms_same_rate", half["p50_ms"], "ms", half_limit["how"]
            ),
        ),  # fmt: skip
        f"{prefix}_incomplete_at_half_rate": figure(
            found["edobs_half"]["incomplete"],
            "events",
            target=0,
            target_on="value",
            higher_is_better=False,
            limit=limit(
                "events_published",
                found["edobs_half"]["published"],
                "events",
                "events published in that run",
            ),
        ),  # fmt: skip
        f"{prefix}_2_daphne_frames_per_s": figure(
            found["two"]["frames_per_s"],
            "frames/s",
            limit=one,
        ),
        f"{prefix}_2_daphne_vs_limit": figure(
            found["two"]["frames_per_s"],
            "frames/s",
            limit=ws_limit,
        ),
    }
    for name, share in found.get("profile", {}).get("libraries", {}).items():
        results[f"{prefix}_profile_{name}_share"] = figure(
            share * found["profile"]["busy"], "samples", higher_is_better=False,
            limit=limit("daphne_busy_samples", found["profile"]["busy"], "samples",
                        "py-spy samples of daphne not idle in its event loop, capacity run"),
        )  # fmt: skip
    return results


def describe(what: str, found: dict) -> str:
    return (
        f"{what}: {found['frames_per_s']:.0f} frames/s, {found['delivered_per_s']:.0f} events/s "
        f"to every client, published {found['published']} at {found['rate']:.0f}/s, p50 "
        f"{found['p50_ms']:.0f} ms p99 {found['p99_ms']:.0f} ms, incomplete "
        f"{found['incomplete']}, lagged notices {found['lagged']}, server "
        f"{found['server_cores']:.2f} cores, the machine {found['machine_cores']:.2f} of {CPUS} "
        f"cores busy, sockets per process {found.get('split', '-')}"
    )


# ---- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    from tests.services import free_port as free

    return free()


def wait_for_port(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("server did not start")


@contextmanager
def serving(cmd: list[str], env: dict, log: Path, port: int, pids=lambda proc: [proc.pid]):
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc)
        yield port, pids(proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def daphne(env: dict, var_dir: Path):
    port = free_port()
    cmd = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "edobs_site.asgi:application"]
    return serving(cmd, env, var_dir / f"daphne-{port}.log", port)


def broadcaster(env: dict, redis_url: str, channel: str):
    port = free_port()
    cmd = [sys.executable, str(ROOT / "bench" / "ws_broadcaster.py"), str(port), redis_url, channel]
    return serving(cmd, env, Path(tempfile.gettempdir()) / f"edobs-ws-{port}.log", port)


SUPERVISOR_CONF = """\
[supervisord]
nodaemon=true
logfile={dir}/supervisord.log
pidfile={dir}/supervisord.pid

[fcgi-program:edobs]
socket=tcp://127.0.0.1:{port}
command={daphne} --fd 0 edobs_site.asgi:application
directory={root}
process_name=daphne%(process_num)d
numprocs={processes}
autorestart=false
stopsignal=TERM
stdout_logfile={dir}/daphne%(process_num)d.log
redirect_stderr=true
"""


def supervised(env: dict, var_dir: Path, processes: int):
    """`processes` daphne processes on one port under supervisord (README: "Several servers")."""
    port = free_port()
    conf = var_dir / "supervisord.conf"
    conf.write_text(SUPERVISOR_CONF.format(
        dir=var_dir, port=port, daphne=BIN / "daphne", root=ROOT, processes=processes))  # fmt: skip
    cmd = [str(BIN / "supervisord"), "-c", str(conf)]

    def children(proc: subprocess.Popen) -> list[int]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = child_pids(proc.pid)
            if len(found) == processes:
                return found
            time.sleep(0.1)
        raise TimeoutError("supervisord did not start its daphne processes")

    return serving(cmd, env, var_dir / "supervisord.out", port, pids=children)


def child_pids(parent: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                pids.append(int(entry.name))
    return sorted(pids)


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes, from /proc (clock ticks)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


# ---- one run: connect, produce, gather -------------------------------------------------------


def setup_django() -> str:
    """Migrate the scratch database, create a superuser, return a session key for it."""
    import django

    django.setup()
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench-pw-1")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


class Receipts:
    """Per event id: how many clients got it and when the last one did."""

    def __init__(self, clients: int) -> None:
        self.clients = clients
        self.count: dict[str, int] = {}
        self.last: dict[str, float] = {}
        self.lagged = 0
        self.frames = 0
        self.first_frame_at = float("inf")
        self.last_frame_at = 0.0

    def add(self, frame: str, now: float) -> None:
        if not frame.startswith(PREFIX):
            self.lagged += frame.startswith('{"type": "lagged"')
            return
        self.frames += 1
        self.first_frame_at = min(self.first_frame_at, now)
        self.last_frame_at = now
        event_id = frame[len(PREFIX) : frame.index('"', len(PREFIX))]
        self.count[event_id] = self.count.get(event_id, 0) + 1
        self.last[event_id] = now

    def state(self) -> dict:
        return {"count": self.count, "last": self.last, "lagged": self.lagged,
                "frames": self.frames, "first_frame_at": self.first_frame_at,
                "last_frame_at": self.last_frame_at}  # fmt: skip

    def merge(self, state: dict) -> None:
        """Add another process's receipts (its clients are distinct from ours)."""
        for event_id, count in state["count"].items():
            self.count[event_id] = self.count.get(event_id, 0) + count
            self.last[event_id] = max(self.last.get(event_id, 0.0), state["last"][event_id])
        self.lagged += state["lagged"]
        self.frames += state["frames"]
        self.first_frame_at = min(self.first_frame_at, state["first_frame_at"])
        self.last_frame_at = max(self.last_frame_at, state["last_frame_at"])

    def complete(self, ids) -> int:
        return sum(1 for event_id in ids if self.count.get(event_id) == self.clients)


def session(port: int, pids: list[int], *, session_key: str, clients: int, rate: float,
            seconds: float, procs: int, during=None) -> dict:  # fmt: skip
    """Connect the clients (in `procs` processes), produce at `rate` for `seconds`, gather."""
    import multiprocessing

    from events.models import Connection

    Connection.objects.all().delete()  # rows a stopped server left behind
    url, origin = f"ws://127.0.0.1:{port}/ws/events/", f"http://127.0.0.1:{port}"
    context = multiprocessing.get_context("spawn")
    shares = [clients // procs + (i < clients % procs) for i in range(procs)]
    pipes, workers = [], []
    for share in filter(None, shares):
        here, there = context.Pipe()
        worker = context.Process(
            target=client_process, args=(there, url, origin, session_key, share), daemon=True
        )
        worker.start()
        pipes.append(here)
        workers.append(worker)
    try:
        for pipe in pipes:  # "ready": all of that process's clients are connected
            if not pipe.poll(120):
                raise TimeoutError("clients did not connect")
            pipe.recv()
        split = sockets_per_server()
        time.sleep(1)
        events = make_events(int(rate * seconds) + BATCH)
        cpu_before, started, machine = cpu_seconds(pids), time.monotonic(), machine_cpu()
        extra = during(seconds) if during else None
        stamps = produce(events, rate, seconds)
        produce_seconds = time.monotonic() - started
        server_cores = (cpu_seconds(pids) - cpu_before) / produce_seconds
        busy = machine_cores(machine, machine_cpu())
        for pipe in pipes:
            pipe.send(list(stamps))
        receipts = Receipts(clients)
        for pipe in pipes:
            receipts.merge(pipe.recv())
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.kill()
    latencies = [
        (receipts.last[i] - at) * 1000
        for i, at in stamps.items()
        if receipts.count.get(i) == clients
    ]
    span = max(1e-9, receipts.last_frame_at - min(receipts.first_frame_at, receipts.last_frame_at))
    return {
        "rate": rate, "published": len(stamps), "frames_per_s": receipts.frames / span,
        "delivered_per_s": len(latencies) / produce_seconds,
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
        "incomplete": len(stamps) - len(latencies), "lagged": receipts.lagged,
        "server_cores": server_cores, "machine_cores": busy, "split": split, "extra": extra,
    }  # fmt: skip


def sockets_per_server() -> list[int]:
    """Open /ws/events/ sockets per edobs server process (none for the broadcaster)."""
    from events.models import Connection

    counts = Counter(Connection.objects.values_list("server", flat=True))
    return sorted(counts.values(), reverse=True)


def client_process(pipe, url: str, origin: str, session_key: str, clients: int) -> None:
    """One client process: connect, report ready, receive until told which ids to expect."""
    asyncio.run(_clients(pipe, url, origin, session_key, clients))


async def _clients(pipe, url: str, origin: str, session_key: str, clients: int) -> None:
    import websockets

    receipts = Receipts(clients)
    headers = {"Cookie": f"sessionid={session_key}"}
    gate = asyncio.Semaphore(12)

    async def connect():
        async with gate:
            return await websockets.connect(url, origin=origin, additional_headers=headers,
                                            max_queue=None, compression=None)  # fmt: skip

    sockets = await asyncio.wait_for(asyncio.gather(*(connect() for _ in range(clients))), 120)
    receivers = [asyncio.create_task(_receive(ws, receipts)) for ws in sockets]
    pipe.send("ready")
    produced = await asyncio.to_thread(pipe.recv)
    # Until every event reached every client here, or nothing came for a second (frames a
    # server dropped for lagging clients never come), at most 20 s.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and receipts.complete(produced) < len(produced):
        if time.monotonic() - receipts.last_frame_at > 1.0:
            break
        await asyncio.sleep(0.1)
    for receiver in receivers:
        receiver.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    pipe.send(receipts.state())


async def _receive(ws, receipts: Receipts) -> None:
    async for frame in ws:
        receipts.add(frame, time.monotonic())


def make_events(count: int) -> list:
    from events.domain.envelope import parse_envelope

    return [parse_envelope(envelope(n), default_account=ACCOUNT) for n in range(count)]


def produce(events: list, rate: float, seconds: float) -> dict[str, float]:
    """Publish `rate` events/s for `seconds` as the worker does after storing each batch of 10;
    returns {event id: when publish_events was called}."""
    from events.live.broadcast import publish_events

    stamps: dict[str, float] = {}
    interval = BATCH / rate
    next_at = time.monotonic()
    deadline = next_at + seconds
    for start in range(0, len(events), BATCH):
        if next_at >= deadline:
            break
        batch = events[start : start + BATCH]
        now = time.monotonic()
        for event in batch:
            stamps[event.id] = now
        publish_events(batch)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    return stamps


def envelope(number: int) -> str:
    job = f"fanout-{number // 40}"
    arn = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:FanoutMachine:{job}"
    return json.dumps({
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "step", "source": "bench",
        "account": ACCOUNT, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1", "resources": [], "detail": {"execution": arn, "n": number},
    })  # fmt: skip


# ---- profile -------------------------------------------------------------------------------

IDLE = ("select (selectors.py", "poll (selectors.py", "_run_once (asyncio/base_events.py")
LIBRARIES = ("autobahn", "txaio", "twisted", "daphne", "channels_redis", "channels", "asgiref",
             "django", "msgpack", "redis", "asyncio", "json", "events", "edobs_site")  # fmt: skip


def pyspy() -> str | None:
    return shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")


def profiled(port: int, pid: int, var_dir: Path, **common) -> dict:
    """A capacity run with py-spy sampling daphne (--nonblocking: it is never paused)."""
    out = var_dir / "daphne.pyspy"

    def during(seconds: float):
        return subprocess.Popen(
            [pyspy(), "record", "--pid", str(pid),
             "--duration", str(int(seconds)), "--rate", "200", "--nonblocking",
             "--format", "raw", "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    found = session(port, [pid], during=during, **common)
    found["extra"].wait(30)
    return stacks(out.read_text()) | {"frames_per_s": found["frames_per_s"]}


def stacks(raw: str) -> dict:
    """Busy samples, each library's share of them (by the innermost frame: self time), and the
    busiest functions."""
    by_library: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    busy = 0
    for line in raw.splitlines():
        path, _, count = line.rpartition(" ")
        if not path or not count.isdigit():
            continue
        leaf = path.split(";")[-1]
        if any(leaf.startswith(idle) for idle in IDLE):
            continue
        busy += int(count)
        by_library[library(leaf)] += int(count)
        by_function[leaf] += int(count)
    return {
        "busy": busy,
        "libraries": {name: n / busy for name, n in by_library.most_common()} if busy else {},
        "functions": [(name, n / busy) for name, n in by_function.most_common(15)] if busy else [],
    }


def library(frame: str) -> str:
    """`send (autobahn/websocket/protocol.py:123)` -> autobahn."""
    location = frame[frame.rfind("(") + 1 :]
    for part in location.replace("\\", "/").split("/"):
        name = part.split(".")[0]
        if name in LIBRARIES:
            return name
    return "python" if "python3" in location or "/lib/" in location else "other"


def profile_table(found: dict) -> str:
    lines = [f"py-spy of one daphne at capacity: {found['busy']} busy samples, self time:"]
    lines += [f"  {name:<16} {share:6.1%}" for name, share in found["libraries"].items()]
    lines.append("  busiest functions (self time):")
    lines += [f"  {share:6.1%}  {name}" for name, share in found["functions"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
