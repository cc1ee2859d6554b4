"""Real Redis, PostgreSQL and Chromium for the tests, started on 127.0.0.1 and free ports.

Each server is a small restartable class (start()/stop() keep the same port and data, so a
fault test can take a server down and bring it back); close() also removes its scratch folder.
The binaries come from Debian's packages (`make test` installs them when it can).  A missing
binary raises ServiceUnavailable; conftest turns that into a skip, or a failure under CI=true.
Fault tests should start their own instance rather than stop the shared session one.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

# Headless Chromium on a machine with no network (docs/FACTS.md).  For Playwright pass
# CHROMIUM_ARGS as `args=` with `executable_path=chromium_path` (it adds --headless itself);
# for the command line use CHROMIUM_HEADLESS_FLAGS plus a fresh --user-data-dir.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM_HEADLESS_FLAGS = ["--headless", *CHROMIUM_ARGS]


class ServiceUnavailable(Exception):
    """A binary or user the service needs is not on this machine."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(check, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


class RedisServer:
    """`redis-server` in the foreground as a child process, no persistence."""

    def __init__(self, port: int | None = None):
        self.binary = shutil.which("redis-server")
        if not self.binary:
            raise ServiceUnavailable(
                "redis-server not found (Debian package redis-server; `make test` installs it "
                "as root)"
            )
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="edobs-redis-")
        self.proc: subprocess.Popen | None = None
        self.log = None
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")

    def start(self, timeout: float = 10) -> RedisServer:
        if self.proc and self.proc.poll() is None:
            return self
        flags = "--bind 127.0.0.1 --appendonly no --daemonize no".split()
        cmd = [self.binary, "--port", str(self.port), "--save", "", *flags, "--dir", self.dir]
        self.log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            _wait_for(self.ping, timeout, f"redis-server on port {self.port}", self.proc)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"{exc}\n{self._log_tail()}") from None
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            return Path(self.dir, "redis.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "redis-server failed to start (no log)"


def _postgres_bindir() -> str:
    dirs = glob.glob("/usr/lib/postgresql/*/bin")
    dirs = [d for d in dirs if os.path.exists(os.path.join(d, "initdb"))]
    if dirs:
        return max(dirs, key=lambda d: float(d.split("/")[-2]))
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(os.path.realpath(initdb))
    raise ServiceUnavailable(
        "PostgreSQL server not found (Debian package postgresql; `make test` installs it as root)"
    )


class PostgresServer:
    """A scratch PostgreSQL cluster (trust auth, user `postgres`), managed with pg_ctl.

    PostgreSQL refuses to run as root, so as root every command runs as the `postgres` user
    in a scratch folder that user owns.
    """

    def __init__(self, port: int | None = None):
        self.bindir = _postgres_bindir()
        self.port = port or free_port()
        self.as_user: list[str] | None = []  # [] = as ourselves, None = via su
        # mkdtemp gives 0700; as root, hand the folder to postgres so it can use it.
        self.dir = tempfile.mkdtemp(prefix="edobs-pg-")
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceUnavailable("running as root, but no `postgres` user") from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            runuser = shutil.which("runuser")
            self.as_user = [runuser, "-u", "postgres", "--"] if runuser else None
        self.data = os.path.join(self.dir, "data")
        self._initialised = False
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60, check: bool = True) -> int:
        cmd = [os.path.join(self.bindir, args[0]), *args[1:]]
        if self.as_user is None:  # root without runuser: fall back to su
            cmd = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)]
        else:
            cmd = [*self.as_user, *cmd]
        res = subprocess.run(cmd, cwd="/", capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}{res.stderr}"
                f"\n{self._log_tail()}"
            )
        return res.returncode

    def start(self, timeout: float = 30) -> PostgresServer:
        if not self._initialised:
            flags = "-A trust -U postgres -E UTF8 --locale=C --no-sync".split()
            self._run("initdb", "-D", self.data, *flags)
            self._initialised = True
        opts = (
            f"-k {self.dir} -h 127.0.0.1 -p {self.port} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = os.path.join(self.dir, "log")
        wait = ["-w", "-t", str(int(timeout))]
        self._run(
            "pg_ctl", "-D", self.data, "-o", opts, "-l", log, *wait, "start", timeout=timeout + 10
        )
        return self

    def running(self) -> bool:
        # pg_ctl status: 0 running, 3 not running
        if not (self._initialised and os.path.isdir(self.data)):
            return False
        return self._run("pg_ctl", "-D", self.data, "status", check=False) == 0

    def stop(self) -> None:
        if self.running():
            self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def close(self) -> None:
        self.stop()
        self._initialised = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            return Path(self.dir, "log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def chromium_binary() -> str:
    path = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
    if os.access(path, os.X_OK):
        return path
    found = shutil.which("chromium")
    if found:
        return found
    raise ServiceUnavailable(
        "chromium not found at /usr/bin/chromium (Debian package chromium; `make test` installs "
        "it as root; never `playwright install`)"
    )


def promtool_binary() -> str:
    """Prometheus's rule checker (Debian package prometheus), for docs/prometheus/."""
    found = shutil.which("promtool")
    if found:
        return found
    raise ServiceUnavailable(
        "promtool not found (Debian package prometheus; `make test` installs it as root)"
    )
