"""``dgov worker``: deliver outbox events, run django-tasks jobs, and report a heartbeat.

One process, one loop, one database connection. Each pass (1) claims and delivers a batch of
due outbox events, (2) runs up to ``--batch-size`` django-tasks jobs from the database backend,
(3) writes the heartbeat every few seconds, and sleeps ``--interval`` seconds only when a pass
found nothing to do.

The tasks part reuses django-tasks-db's own ``Worker`` (its claiming and its ``run_task``, which
records results and sends the task signals), driven one task at a time from this loop instead of
its blocking ``run()``. Interleaving in one thread was chosen over a second thread because SQLite
has a single writer anyway, tests can drain everything inside their own transaction, and one
SIGTERM stops one loop. The cost: a long task delays event delivery and the heartbeat, so keep
tasks short or raise ``WORKER_HEARTBEAT_MAX_AGE``; scale out by running more workers (PostgreSQL
claims with SKIP LOCKED, so they never take the same event or task).

SIGTERM/SIGINT finish the current event or task, write a final heartbeat marked stopped and exit;
a second signal exits at once. ``--once`` drains everything due now and exits (tests, demo, cron).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connections
from django.db.utils import OperationalError
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.module_loading import import_string
from django_tasks import DEFAULT_TASK_BACKEND_ALIAS, task_backends
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.management.commands.db_worker import Worker as DbTaskWorker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception
from prometheus_client import Counter

from dgov.kernel.models import WorkerHeartbeat
from dgov.kernel.services import events

logger = logging.getLogger("dgov.worker")

TASKS_RUN = Counter("dgov_worker_tasks_total", "django-tasks jobs run by this worker")


def _recycle_connections() -> None:
    """Drop broken or expired connections between passes, as Django does between requests.

    Skipped inside an atomic block (a test draining the outbox in its own transaction), where
    Django would read the disabled autocommit as "unusable" and close the caller's connection.
    """
    if not any(conn.in_atomic_block for conn in connections.all(initialized_only=True)):
        close_old_connections()


class TaskRunner(DbTaskWorker):
    """django-tasks-db's worker, stepped one task at a time from our loop instead of its own."""

    def run_one(self) -> bool:
        """Claim and run the next ready task; False when there was none (or the database was busy)."""
        tasks = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
        if not self.process_all_queues:
            tasks = tasks.filter(queue_name__in=self.queue_names)
        if self.excluded_queue_names:
            tasks = tasks.exclude(queue_name__in=self.excluded_queue_names)
        try:
            with exclusive_transaction(tasks.db):
                result = tasks.get_locked()
                if result is not None:
                    result.claim(self.worker_id)
        except OperationalError as exc:
            if is_locked_database_exception(exc):
                return False
            raise
        if result is None:
            return False
        self.run_task(result)
        TASKS_RUN.inc()
        return True


class BackgroundWorker:
    """The worker loop: outbox, tasks and heartbeat, with a graceful stop."""

    def __init__(
        self,
        *,
        interval: float = 1.0,
        batch_size: int = 100,
        queue_names: tuple[str, ...] = ("*",),
        run_tasks: bool = True,
        worker_id: str | None = None,
        heartbeat_every: float | None = None,
    ):
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.worker_id = (worker_id or f"{self.hostname[:40]}:{self.pid}:{get_random_string(8)}")[:64]
        self.interval = interval
        self.batch_size = batch_size
        max_age = float(settings.WORKER_HEARTBEAT_MAX_AGE)
        self.heartbeat_every = (
            heartbeat_every if heartbeat_every is not None else max(0.5, min(5.0, max_age / 3))
        )
        self.started_at = timezone.now()
        # A plain flag, not threading.Event: setting an Event from a signal handler can deadlock
        # on the Event's internal lock if the signal lands while the main thread holds it.
        self.stopping = False
        self.events_delivered = 0
        self.events_failed = 0
        self.tasks_run = 0
        self._last_beat = 0.0
        self._last_periodic = 0.0
        self._periodic: list | None = None
        self.task_runner = None
        if run_tasks and isinstance(task_backends[DEFAULT_TASK_BACKEND_ALIAS], DatabaseBackend):
            self.task_runner = TaskRunner(
                queue_names=list(queue_names),
                interval=0,
                batch=True,
                backend_name=DEFAULT_TASK_BACKEND_ALIAS,
                startup_delay=False,
                max_tasks=None,
                worker_id=self.worker_id,
                excluded_queue_names=[],
            )

    # -- heartbeat -------------------------------------------------------------------------------

    def beat(self, *, stopped: bool = False, force: bool = False) -> None:
        """Write the heartbeat if it is due (or ``force``), and refresh the backlog gauge with it."""
        now = time.monotonic()
        if not (force or stopped or now - self._last_beat >= self.heartbeat_every):
            return
        events.record_heartbeat(
            self.worker_id,
            hostname=self.hostname,
            pid=self.pid,
            started_at=self.started_at,
            events_delivered=self.events_delivered,
            events_failed=self.events_failed,
            tasks_run=self.tasks_run,
            stopped=stopped,
        )
        events.refresh_gauges()
        self._last_beat = now

    # -- periodic jobs ---------------------------------------------------------------------------

    def run_periodic(self) -> int:
        """Run the jobs named in ``settings.WORKER_PERIODIC_JOBS`` (each at most once a second); returns their work.

        A job is a dotted path to a function without arguments returning how much it did (another
        app's job, found late so the kernel imports no app). A failing job is logged, not fatal.
        """
        now = time.monotonic()
        if now - self._last_periodic < 1.0:
            return 0
        self._last_periodic = now
        if self._periodic is None:
            self._periodic = []
            for path in getattr(settings, "WORKER_PERIODIC_JOBS", []):
                try:
                    self._periodic.append(import_string(path))
                except ImportError:
                    logger.warning("periodic job %s not found", path)
        work = 0
        for job in self._periodic:
            try:
                work += int(job() or 0)
            except Exception:
                logger.exception("periodic job failed", extra={"job": getattr(job, "__qualname__", str(job))})
        return work

    # -- one pass --------------------------------------------------------------------------------

    def step(self) -> int:
        """One pass over the outbox and the task queue; returns how much work it found."""
        _recycle_connections()
        result = events.drain(self.worker_id, limit=self.batch_size, should_stop=lambda: self.stopping)
        self.events_delivered += result.delivered
        self.events_failed += result.failed
        work = result.claimed + self.run_periodic()
        if self.task_runner is not None:
            for _ in range(self.batch_size):
                if self.stopping or not self.task_runner.run_one():
                    break
                self.tasks_run += 1
                work += 1
        self.beat()
        return work

    def run(self, *, once: bool = False) -> None:
        """Loop until stopped (or, with ``once``, until a pass finds nothing due)."""
        events.autodiscover()
        WorkerHeartbeat.objects.filter(last_seen__lt=timezone.now() - timedelta(days=1)).delete()
        self.beat(force=True)
        logger.info("worker started", extra={"worker_id": self.worker_id, "once": once})
        failures = 0
        try:
            while not self.stopping:
                try:
                    work = self.step()
                    failures = 0
                except Exception:
                    if once:
                        raise
                    # The database went away or a bug surfaced: log, back off, keep the process alive.
                    failures += 1
                    logger.exception("worker pass failed", extra={"worker_id": self.worker_id})
                    _recycle_connections()
                    self._sleep(min(60.0, self.interval * 2**failures))
                    continue
                if once and work == 0:
                    break
                if work == 0:
                    self._sleep(self.interval)
        finally:
            try:
                self.beat(stopped=True)
            except Exception:  # the database may be the reason we are stopping
                logger.exception("final heartbeat failed", extra={"worker_id": self.worker_id})
            logger.info(
                "worker stopped",
                extra={
                    "worker_id": self.worker_id,
                    "events_delivered": self.events_delivered,
                    "events_failed": self.events_failed,
                    "tasks_run": self.tasks_run,
                },
            )

    def stop(self) -> None:
        """Ask the loop to finish the current event or task and exit."""
        self.stopping = True

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping and (left := end - time.monotonic()) > 0:
            time.sleep(min(0.2, left))


class Command(BaseCommand):
    """Run the background worker (outbox events, django-tasks jobs, heartbeat)."""

    help = "运行后台进程：投递领域事件、执行后台任务并上报心跳。"

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="drain everything due now, then exit")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="seconds to sleep when idle (default 1)"
        )
        parser.add_argument(
            "--batch-size", type=int, default=100, help="events / tasks per pass (default 100)"
        )
        parser.add_argument(
            "--queue-name", default="*", help="django-tasks queues, comma-separated ('*' = all)"
        )
        parser.add_argument("--no-tasks", action="store_true", help="deliver outbox events only")
        parser.add_argument(
            "--worker-id", default=None, help="unique id of this worker (default: host:pid:random)"
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=int(os.environ.get("DGOV_WORKER_METRICS_PORT", "0") or 0),
            help="serve Prometheus metrics of this process on this port (env DGOV_WORKER_METRICS_PORT)",
        )

    def handle(self, *args, **options):
        if options["interval"] < 0 or options["batch_size"] < 1:
            raise CommandError("--interval must be >= 0 and --batch-size >= 1")
        if options["metrics_port"]:
            from prometheus_client import start_http_server

            start_http_server(options["metrics_port"], addr="127.0.0.1")
        worker = BackgroundWorker(
            interval=options["interval"],
            batch_size=options["batch_size"],
            queue_names=tuple(q.strip() for q in options["queue_name"].split(",") if q.strip()) or ("*",),
            run_tasks=not options["no_tasks"],
            worker_id=options["worker_id"],
        )

        def on_signal(signum, frame):
            if worker.stopping:
                raise SystemExit(1)
            logger.warning("stopping after the current job", extra={"signal": signal.Signals(signum).name})
            worker.stop()

        installed = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                installed[sig] = signal.signal(sig, on_signal)
        try:
            worker.run(once=options["once"])
        finally:
            for sig, previous in installed.items():
                signal.signal(sig, previous)
        if options["once"] and options["verbosity"] > 0:
            self.stdout.write(
                f"worker {worker.worker_id}: delivered {worker.events_delivered} events, "
                f"{worker.events_failed} failed, ran {worker.tasks_run} tasks"
            )
