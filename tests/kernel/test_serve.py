"""``dgov serve``: command lines, banner, supervision, and one real start of the web server + worker."""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command

from dgov.kernel.management.commands import serve


def test_build_plan_command_lines():
    plan = serve.build_plan(bind="0.0.0.0:9000", workers=3, threads=8, python="/py", environ={"PATH": "/bin"})
    assert plan.web_cmd[:6] == ["/py", "-m", "granian", "--interface", "rsgi", "--no-ws"]
    assert plan.web_cmd[-1] == "dgov.rsgi:application"
    assert plan.env["DGOV_WEB_THREADS"] == "8"  # the size of dgov.rsgi's thread pool
    text = " ".join(plan.web_cmd)
    assert "--host 0.0.0.0 --port 9000" in text and "--workers 3 " in text
    log_config = Path(plan.web_cmd[plan.web_cmd.index("--log-config") + 1])
    assert json.loads(log_config.read_text())["formatters"]["json"]["()"].endswith("JsonFormatter")
    assert plan.worker_cmd == ["/py", "-m", "dgov.cli", "worker", "--interval", "1"]
    assert plan.env["DGOV_BIND"] == "0.0.0.0:9000"
    assert (plan.env["DGOV_WEB_WORKERS"], plan.env["DGOV_WEB_THREADS"]) == ("3", "8")
    assert plan.env["PATH"] == "/bin" and plan.env["DJANGO_SETTINGS_MODULE"]
    assert plan.base_url == "http://127.0.0.1:9000"
    assert serve.build_plan(with_worker=False).worker_cmd is None
    assert serve.build_plan(bind="[::]:8001").base_url == "http://[::1]:8001"
    with pytest.raises(ValueError):
        serve.build_plan(workers=0)


def test_banner_lists_urls_and_logins():
    plan = serve.build_plan(bind="127.0.0.1:8123")
    text = serve.render_banner(plan, [{"username": "admin", "password": "pw", "role": "平台管理员"}, ("a", "b")])
    for path in ("/", "/workbench/", "/admin/", "/api/v1/docs", "/healthz", "/readyz", "/metrics"):
        assert f"http://127.0.0.1:8123{path}\n" in text
    assert "admin / pw  (平台管理员)" in text and "a / b" in text
    assert "demo logins" not in serve.render_banner(plan, [])


@pytest.mark.django_db
def test_dry_run_prints_plan_without_starting(monkeypatch):
    monkeypatch.setattr(serve, "demo_logins", lambda: [{"username": "citizen", "password": "pw"}])
    out = io.StringIO()
    call_command("serve", "--dry-run", "--bind", "127.0.0.1:8765", "--no-worker", stdout=out)
    text = out.getvalue()
    assert "granian --interface rsgi --no-ws --host 127.0.0.1 --port 8765" in text
    assert "worker: (none)" in text
    assert "http://127.0.0.1:8765/readyz" in text and "citizen / pw" in text


def test_demo_hooks_are_late_bound(settings):
    settings.DEMO_LOGINS = "no.such.module.demo_logins"
    settings.DEMO_IS_SEEDED = "no.such.module.is_seeded"
    assert serve.demo_logins() == []
    assert serve.demo_is_seeded() is None
    settings.DEMO_LOGINS = "json.loads"  # any callable: its failure must not break start-up
    assert serve.demo_logins() == []


def test_seed_demo_runs_demo_only_when_missing(monkeypatch):
    calls = []
    monkeypatch.setattr(serve, "call_command", lambda name, *a, **k: calls.append(name))
    monkeypatch.setattr(serve, "get_commands", lambda: {"demo": "dgov.registry"})
    command = serve.Command(stdout=io.StringIO())
    monkeypatch.setattr(serve, "demo_is_seeded", lambda: True)
    command.seed_demo()
    assert calls == []
    monkeypatch.setattr(serve, "demo_is_seeded", lambda: False)
    command.seed_demo()
    assert calls == ["demo"]
    monkeypatch.setattr(serve, "get_commands", lambda: {})
    command.seed_demo()
    assert calls == ["demo"]


class FakeProcess:
    """A child process whose exit the test decides."""

    def __init__(self, cmd):
        self.cmd = cmd
        self.returncode = None
        self.signals = []

    def poll(self):
        return self.returncode

    def send_signal(self, sig):
        self.signals.append(sig)
        self.returncode = -sig

    def wait(self, timeout=None):
        return self.returncode

    def kill(self):
        self.returncode = -9


def make_supervisor():
    started = []

    def popen(cmd, **kwargs):
        assert kwargs["start_new_session"] is True
        proc = FakeProcess(cmd)
        started.append(proc)
        return proc

    plan = serve.build_plan(python="py")
    return serve.Supervisor(plan, out=io.StringIO(), popen=popen), started


def test_supervisor_restarts_a_crashed_worker_then_gives_up():
    sup, started = make_supervisor()
    sup.start()
    web, worker = started
    assert web.cmd[2] == "granian" and worker.cmd[3] == "worker"
    assert sup.poll() is None
    for restart in range(1, serve.WORKER_RESTARTS):
        sup.worker.returncode = 1
        assert sup.poll() is None
        assert len(started) == 2 + restart  # a fresh worker process
    sup.worker.returncode = 1
    assert sup.poll() == 1  # too many crashes: stop rather than run without a worker
    sup.stop()
    assert web.signals == [signal.SIGTERM]


def test_supervisor_stops_everything_when_the_web_server_exits():
    sup, started = make_supervisor()
    sup.start()
    web, worker = started
    web.returncode = 3
    assert sup.poll() == 3
    sup.stop()
    assert worker.signals == [signal.SIGTERM] and web.signals == []


def test_supervisor_forwards_stop_signal():
    sup, started = make_supervisor()
    sup.start()
    sup.request_stop(signal.SIGINT, None)
    assert sup.poll() == 0
    sup.stop()
    assert [p.signals for p in started] == [[signal.SIGTERM], [signal.SIGTERM]]


def test_web_command_reads_environment():
    from dgov import server

    cmd = server.web_command(
        {
            "DGOV_BIND": "unix:/tmp/dgov.sock",
            "DGOV_WEB_WORKERS": "5",
            "DGOV_WEB_THREADS": "6",
            "DGOV_WEB_MAX_RSS": "512",
            "DGOV_LOG_LEVEL": "WARNING",
        },
        python="/py",
    )
    text = " ".join(cmd)
    assert "--uds /tmp/dgov.sock" in text and "--workers 5 " in text
    assert "--workers-max-rss 512" in text and "--log-level warning" in text and "--no-access-log" in text
    default = " ".join(server.web_command({}, python="/py"))
    assert "--host 127.0.0.1 --port 8000" in default and "--workers 2 " in default
    assert "--workers-lifetime 86400" in default and "--workers-max-rss" not in default
    assert "--host ::1 --port 8001" in " ".join(server.web_command({"DGOV_BIND": "[::1]:8001"}))
    for bad in ("127.0.0.1:1,127.0.0.1:2", "localhost", ":80"):
        with pytest.raises(ValueError):
            server.web_command({"DGOV_BIND": bad})
    with pytest.raises(ValueError, match="DGOV_WEB_WORKERS"):
        server.web_command({"DGOV_WEB_WORKERS": "two"})


# --- a real start ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local test server
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _smoke_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a fresh data directory; generates migrations into tmp when the repo has none yet."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DGOV_", "DJANGO_", "DATABASE_URL"))}
    env.update(
        DGOV_DATA_DIR=str(tmp_path / "data"),
        DGOV_MASTER_KEY="00112233445566778899aabbccddeeff",
        DJANGO_SETTINGS_MODULE="dgov.settings",
        DGOV_WORKER_HEARTBEAT_MAX_AGE="30",
    )
    return env


def _wait_until_ready(proc, base: str, tmp_path: Path) -> None:
    """Wait for /healthz and /readyz to answer 200."""
    deadline = time.monotonic() + 60
    health = ready = body = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            health = _get(base + "/healthz")[0]
            ready, body = _get(base + "/readyz")
            if health == 200 and ready == 200:
                break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    output = (tmp_path / "serve.log").read_text(errors="replace")
    assert health == 200, output
    assert ready == 200, (body, output)  # the worker subprocess is beating
    assert json.loads(body)["checks"] == {"database": "ok", "worker": "ok"}
    assert f"{base}/workbench/" in output
    # Access-log lines are written in batches (every 0.1 s by default): give the last one a moment.
    deadline = time.monotonic() + 5
    while True:
        access = [json.loads(line) for line in output.splitlines() if '"dgov.access"' in line]
        if any(a["path"] == "/healthz" and a["status"] == 200 and a["request_id"] != "-" for a in access):
            break
        assert time.monotonic() < deadline, output
        time.sleep(0.1)
        output = (tmp_path / "serve.log").read_text(errors="replace")


def _healthz_count(base: str) -> tuple[float, str]:
    """The summed count of answered /healthz requests in /metrics, and the whole exposition."""
    status, body = _get(base + "/metrics")
    assert status == 200
    text = body.decode()
    line = 'dgov_http_requests_total{method="GET",route="healthz",status="200"}'
    return next(float(row.rsplit(" ", 1)[1]) for row in text.splitlines() if row.startswith(line)), text


@pytest.mark.slow
def test_serve_starts_web_server_and_worker(tmp_path):
    env = _smoke_env(tmp_path)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dgov.cli",
                "serve",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "2",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_ready(proc, base, tmp_path)
            before, _text = _healthz_count(base)
            for _ in range(20):
                assert _get(base + "/healthz")[0] == 200
            # /metrics sums every process (two web workers and the background worker), so the
            # count grows by exactly 20 whichever web worker answered which request.
            after, text = _healthz_count(base)
            assert after - before == 20
            assert "dgov_worker_tasks_total" in text  # counted in the worker process, not in the web server
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    assert code == 0, (tmp_path / "serve.log").read_text(errors="replace")
    with pytest.raises(urllib.error.URLError):
        _get(base + "/healthz")  # the web server went down with serve
