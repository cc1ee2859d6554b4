"""The process layouts of docs/deploy/ (README "Running it for real"), read by the tools that
run them: supervisord's own config parser and `systemd-analyze verify`.  Both must start 2
daphne processes, N `consume_events` workers and one `run_alerts`, with commands that exist."""

from __future__ import annotations

import getpass
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "docs" / "deploy"
ASGI = "edobs_site.asgi:application"


def _local(text: str, tmp: Path) -> str:
    """The layout with this checkout's paths, a scratch folder and this machine's user."""
    return (
        text.replace("/srv/edobs/.venv", str(ROOT / ".venv"))
        .replace("/srv/edobs/run-with-env ", "")
        .replace("/srv/edobs/env", str(tmp / "env"))
        .replace("/srv/edobs", str(ROOT))
        .replace("/var/log/edobs", str(tmp))
        .replace("/run/edobs", str(tmp))
        .replace("user=edobs", f"user={getpass.getuser()}")
        .replace("User=edobs", f"User={getpass.getuser()}")
    )


def _manage_command(argv: list[str]) -> str | None:
    return argv[argv.index("manage.py") + 1] if "manage.py" in argv else None


def test_supervisord_runs_two_daphne_n_workers_and_the_alerts_loop(tmp_path):
    from supervisor.options import ServerOptions

    config = tmp_path / "supervisord.conf"
    config.write_text(_local((DEPLOY / "supervisord.conf").read_text(), tmp_path))
    options = ServerOptions()
    options.configfile = str(config)
    groups = {group.name: group for group in options.read_config(str(config)).process_group_configs}

    web = groups["edobs-web"]
    assert [p.name for p in web.process_configs] == ["daphne0", "daphne1"]
    assert str(web.socket_config) == "tcp://127.0.0.1:8000"
    for process in web.process_configs:
        argv = shlex.split(process.command)
        assert Path(argv[0]).name == "daphne" and argv[-1] == ASGI and "--fd" in argv
        assert Path(argv[0]).exists()
    workers = groups["edobs-worker"].process_configs
    assert len(workers) >= 2
    commands = {_manage_command(shlex.split(p.command)) for p in workers}
    assert commands == {"consume_events"}
    alerts = groups["edobs-alerts"].process_configs
    assert [_manage_command(shlex.split(p.command)) for p in alerts] == ["run_alerts"]
    assert commands | {"run_alerts"} <= set(get_commands())


def test_the_env_wrapper_is_executable_and_the_example_names_only_real_settings():
    from django.conf import settings

    assert (DEPLOY / "run-with-env").stat().st_mode & 0o111
    names = [
        line.split("=", 1)[0]
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    readme = (ROOT / "README.md").read_text()
    for name in names:
        assert f"`{name}`" in readme, name
    assert {"EDOBS_OIDC_ISSUER", "EDOBS_OIDC_CLIENT_ID", "EDOBS_OIDC_CLIENT_SECRET"} <= set(names)
    assert all(hasattr(settings, n) for n in names if n.startswith("EDOBS_OIDC_"))


def test_systemd_units_verify_and_start_the_same_processes(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not on this machine (Debian package systemd)")
    (tmp_path / "env").write_text("")
    units = {}
    for source in DEPLOY.glob("edobs*"):
        units[source.name] = _local(source.read_text(), tmp_path)
        (tmp_path / source.name).write_text(units[source.name])
    # A template verifies as an instance: the target names 2 web ports and the workers.
    target = units["edobs.target"]
    instances = [
        w for line in target.splitlines() if line.startswith("Wants=") for w in line[6:].split()
    ]
    assert sorted(i for i in instances if i.startswith("edobs-web@")) == [
        "edobs-web@8001.service", "edobs-web@8002.service",
    ]  # fmt: skip
    assert len([i for i in instances if i.startswith("edobs-worker@")]) >= 2
    for instance in instances:
        template = instance.split("@")[0] + "@.service" if "@" in instance else instance
        (tmp_path / instance).write_text(units[template])
    done = subprocess.run(
        [analyze, "verify", "--man=no", *(str(tmp_path / i) for i in instances)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    starts = {
        name: shlex.split(line.split("=", 1)[1])
        for name, text in units.items()
        for line in text.splitlines()
        if line.startswith("ExecStart=")
    }
    assert starts["edobs-web@.service"][-1] == ASGI
    assert "%i" in starts["edobs-web@.service"]
    assert _manage_command(starts["edobs-worker@.service"]) == "consume_events"
    assert _manage_command(starts["edobs-alerts.service"]) == "run_alerts"
