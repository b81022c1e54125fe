"""``dgov serve``: migrate, collect static files, optionally seed the demo, then run web + worker.

What ``make run`` runs. Steps, each reusing what already exists so a second run starts fast:

1. ``migrate`` (no-op when up to date);
2. ``collectstatic`` quietly (only changed files are copied);
3. with ``--demo``: ``dgov demo`` unless the demo province is already seeded — the demo lives in
   another app, so it is found late-bound (``get_commands()`` and the dotted paths in
   ``settings.DEMO_IS_SEEDED`` / ``settings.DEMO_LOGINS``), never imported by the kernel;
4. the web server (Granian serving ``dgov.wsgi``; command line from :mod:`dgov.server`) and
   ``dgov worker`` as two child processes, then the URLs and demo logins are printed.

Supervision: SIGINT/SIGTERM are forwarded to both children as SIGTERM (graceful: the web server
finishes requests in flight, the worker its current job), and they are killed after a grace
period. If the web server exits, everything stops and ``serve`` exits with its status — its main
process already restarts its own crashed workers, so its exit is fatal. If the worker exits
unexpectedly, it is restarted (up to 5 times in 5 minutes) because the site itself keeps serving
and only background delivery is interrupted; past that limit ``serve`` stops with an error
rather than run without a worker while /readyz says 503.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from dgov import server

DEFAULT_BIND = "127.0.0.1:8000"
GRACE_SECONDS = 35.0  # the web server's workers get 30 s to finish (--workers-kill-timeout)
WORKER_RESTARTS = 5
WORKER_RESTART_WINDOW = 300.0

SITE_PAGES = (
    ("门户 portal", "/"),
    ("工作台 workbench", "/workbench/"),
    ("管理后台 admin", "/admin/"),
    ("接口文档 API docs", "/api/v1/docs"),
    ("存活检查 liveness", "/healthz"),
    ("就绪检查 readiness", "/readyz"),
    ("监控指标 metrics", "/metrics"),
)


@dataclass
class ServePlan:
    """The two command lines ``serve`` runs and the environment they run in."""

    bind: str
    web_cmd: list[str]
    worker_cmd: list[str] | None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """The URL a browser on this machine opens for the first bind address."""
        first = self.bind.split(",")[0].strip()
        if first.startswith("unix:"):
            return first
        host, _, port = first.rpartition(":")
        if host in ("", "0.0.0.0", "*"):  # noqa: S104 - mapping a wildcard bind to a clickable URL
            host = "127.0.0.1"
        elif host in ("[::]", "::"):
            host = "[::1]"
        return f"http://{host}:{port}"

    def urls(self) -> list[tuple[str, str]]:
        """(label, absolute URL) of the pages worth knowing."""
        return [(label, self.base_url.rstrip("/") + path) for label, path in SITE_PAGES]


def build_plan(
    *,
    bind: str = DEFAULT_BIND,
    workers: int = 2,
    threads: int = 4,
    with_worker: bool = True,
    worker_interval: float = 1.0,
    python: str | None = None,
    environ: dict[str, str] | None = None,
) -> ServePlan:
    """Build the web server and worker command lines (nothing is started)."""
    if workers < 1 or threads < 1:
        raise ValueError("workers and threads must be at least 1")
    python = python or sys.executable
    env = dict(os.environ if environ is None else environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", os.environ.get("DJANGO_SETTINGS_MODULE", "dgov.settings"))
    env.update(DGOV_BIND=bind, DGOV_WEB_WORKERS=str(workers), DGOV_WEB_THREADS=str(threads))
    env["PYTHONUNBUFFERED"] = "1"
    # web workers and the background worker each count their own metrics; prometheus_client's
    # multiprocess mode lets /metrics, answered by any one process, report the sum of all of them.
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(settings.DATA_DIR / "prometheus"))
    web_cmd = server.web_command(env, python=python, log_config=server.write_log_config(settings.DATA_DIR / "run"))
    worker_cmd = (
        [python, "-m", "dgov.cli", "worker", "--interval", f"{worker_interval:g}"] if with_worker else None
    )
    return ServePlan(bind=bind, web_cmd=web_cmd, worker_cmd=worker_cmd, env=env)


def reset_metrics_dir(path: str) -> None:
    """Empty the multiprocess metrics directory: counters of a previous run must not carry over."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def _format_login(login) -> str:
    if isinstance(login, dict):
        parts = [str(login.get("username", "")), str(login.get("password", ""))]
        role = login.get("role")
        return " / ".join(p for p in parts if p) + (f"  ({role})" if role else "")
    if isinstance(login, (tuple, list)):
        return " / ".join(str(p) for p in login)
    return str(login)


def _display_width(text: str) -> int:
    """Terminal columns of ``text`` (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def render_banner(plan: ServePlan, logins: list | None = None) -> str:
    """The text printed once the server is up: URLs and, when seeded, the demo logins."""
    lines = ["", "dgov 数字政府平台 is running:", ""]
    width = max(_display_width(label) for label, _ in SITE_PAGES)
    lines += [f"  {label}{' ' * (width - _display_width(label))}  {url}" for label, url in plan.urls()]
    if logins:
        lines += ["", "演示账号 demo logins (username / password):"]
        lines += [f"  {_format_login(login)}" for login in logins]
    lines += ["", "Press Ctrl+C to stop.", ""]
    return "\n".join(lines)


def _hook(setting: str, default: str):
    """A function named by a dotted path in settings, or None when its app is not installed."""
    try:
        return import_string(getattr(settings, setting, default))
    except ImportError:
        return None


def demo_logins() -> list:
    """Demo accounts from the demo app's ``demo_logins()`` hook, or [] when there is none."""
    func = _hook("DEMO_LOGINS", "dgov.registry.demo.demo_logins")
    if func is None:
        return []
    try:
        return list(func() or [])
    except Exception:  # noqa: BLE001 - a banner is not worth failing start-up for
        return []


def demo_is_seeded() -> bool | None:
    """Whether the demo province is seeded (None when the demo app offers no way to tell)."""
    func = _hook("DEMO_IS_SEEDED", "dgov.registry.demo.is_seeded")
    return None if func is None else bool(func())


class Supervisor:
    """Runs the web and worker processes, forwards stop signals and reacts when one exits."""

    def __init__(self, plan: ServePlan, *, out=None, popen=subprocess.Popen):
        self.plan = plan
        self.out = out or sys.stdout
        self.popen = popen
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.stop_requested = False
        self.worker_starts: list[float] = []

    def _spawn(self, cmd: list[str]) -> subprocess.Popen:
        # Own process group: a terminal's Ctrl+C reaches only `serve`, which then stops the children
        # in order instead of all three racing each other.
        return self.popen(cmd, env=self.plan.env, start_new_session=True)

    def start_worker(self) -> None:
        """(Re)start the background worker process."""
        now = time.monotonic()
        self.worker_starts = [t for t in self.worker_starts if now - t < WORKER_RESTART_WINDOW] + [now]
        self.worker = self._spawn(self.plan.worker_cmd)

    def start(self) -> None:
        """Start the web server and (if planned) the worker."""
        self.web = self._spawn(self.plan.web_cmd)
        if self.plan.worker_cmd:
            self.start_worker()

    def request_stop(self, signum=None, frame=None) -> None:
        """Signal handler: begin a graceful stop."""
        self.stop_requested = True

    def poll(self) -> int | None:
        """Check the children once; returns an exit status when serve should stop, else None."""
        if self.stop_requested:
            return 0
        if self.web is not None and self.web.poll() is not None:
            self.out.write(f"web server exited with status {self.web.returncode}; stopping.\n")
            return self.web.returncode or 1
        if self.worker is not None and self.worker.poll() is not None:
            code = self.worker.returncode
            if len(self.worker_starts) >= WORKER_RESTARTS:
                self.out.write(f"worker exited with status {code} {WORKER_RESTARTS} times; stopping.\n")
                return 1
            self.out.write(f"worker exited with status {code}; restarting it.\n")
            self.start_worker()
        return None

    def stop(self) -> None:
        """Ask both children to stop (SIGTERM), then kill whatever outlives the grace period."""
        children = [p for p in (self.web, self.worker) if p is not None and p.poll() is None]
        for proc in children:
            with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for proc in children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def run(self, *, poll_interval: float = 0.5) -> int:
        """Start, supervise until a stop signal or a fatal exit, stop; returns serve's exit status."""
        previous = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while (status := self.poll()) is None:
                time.sleep(poll_interval)
            return status
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class Command(BaseCommand):
    """Run dgov in production shape: migrate, collectstatic, (demo), web server + worker."""

    help = "启动平台：迁移数据库、收集静态文件、（可选）生成演示数据，然后运行 Web 服务与后台进程。"

    def add_arguments(self, parser):
        parser.add_argument(
            "--bind",
            default=os.environ.get("DGOV_BIND", DEFAULT_BIND),
            help="address:port to listen on (env DGOV_BIND, default 127.0.0.1:8000)",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("DGOV_WEB_WORKERS", "2") or 2),
            help="web server worker processes (env DGOV_WEB_WORKERS, default 2)",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=int(os.environ.get("DGOV_WEB_THREADS", "4") or 4),
            help="application threads per web worker (env DGOV_WEB_THREADS, default 4)",
        )
        parser.add_argument(
            "--demo", action="store_true", help="seed the demo province first if it is missing"
        )
        parser.add_argument("--no-worker", action="store_true", help="do not start the background worker")
        parser.add_argument("--skip-setup", action="store_true", help="skip migrate and collectstatic")
        parser.add_argument(
            "--dry-run", action="store_true", help="print the command lines and URLs, start nothing"
        )

    def handle(self, *args, **opts):
        try:
            plan = build_plan(
                bind=opts["bind"],
                workers=opts["workers"],
                threads=opts["threads"],
                with_worker=not opts["no_worker"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if opts["dry_run"]:
            self.stdout.write("web:    " + " ".join(plan.web_cmd))
            self.stdout.write("worker: " + (" ".join(plan.worker_cmd) if plan.worker_cmd else "(none)"))
            self.stdout.write(render_banner(plan, demo_logins()))
            return
        if not opts["skip_setup"]:
            self.stdout.write("migrate …")
            call_command("migrate", interactive=False, verbosity=0)
            self.stdout.write("collectstatic …")
            call_command("collectstatic", interactive=False, verbosity=0)
        if opts["demo"]:
            self.seed_demo()
        reset_metrics_dir(plan.env["PROMETHEUS_MULTIPROC_DIR"])
        supervisor = Supervisor(plan, out=self.stdout)
        self.stdout.write(render_banner(plan, demo_logins()))
        self.stdout.flush()  # stdout may be a pipe or a log file: show the URLs now, not at exit
        status = supervisor.run()
        if status:
            raise CommandError(f"stopped (status {status})", returncode=status)

    def seed_demo(self) -> None:
        """Run ``dgov demo`` once, when the demo app is installed and has not seeded this database."""
        if "demo" not in get_commands():
            self.stdout.write("no demo command installed; skipping the demo data.")
            return
        if demo_is_seeded():
            self.stdout.write("demo province already seeded.")
            return
        self.stdout.write("seeding the demo province (first run only) …")
        call_command("demo")
