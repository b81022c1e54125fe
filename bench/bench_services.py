"""一网通办 applications on BPMN processes (issue 8): submissions/s and task completions/s on PostgreSQL,
and the persisted state size / completion time of a 100-task process against its history.

Peer figure: Camunda 8 publishes about 100 completed tasks/s (process instances with one service task
each) for its 1x SaaS cluster of 11 vCPU — about 9 tasks/s per vCPU. dgov's figures are reported per
core of this machine, which also runs PostgreSQL and the load generator, so they are conservative.

What runs (in a fresh database, migrations disabled as in the tests; dropped afterwards):

* **submit** — ``--workers`` processes each call ``applications.submit`` for ``--seconds``: form validated
  against the item's schema, the ``review`` BPMN process started and run to its first user task, the
  sealed form, compact state, task row, event and audit record written in one transaction.
* **complete** — the same workers then complete the 受理 tasks of their own applications with
  ``applications.complete_task`` (row lock, version compare-and-swap, engine step, new task row, event,
  audit) for ``--seconds``.
* **history** — one application on a generated 100-user-task chain: the compact state size and the time of
  each completion, printed at 1, 10, 25, 50, 75 and 100 completed tasks.
* **documents** — ``--documents`` applications approved one after another (the closing completion timed),
  then the worker's step for each: the decision document drawn, PAdES-signed and sealed
  (``results.render_result``).

Run: ``.venv/bin/python bench/bench_services.py [--workers 4] [--seconds 10]
[--database-url postgres://postgres@127.0.0.1:5432/postgres | --sqlite]``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from common import table

SRC = Path(__file__).resolve().parent.parent / "src"
CAMUNDA_TASKS_PER_S = 100
CAMUNDA_VCPU = 11

SETTINGS_TEMPLATE = '''"""Settings of the services benchmark: dgov's settings with migrations disabled."""
from dgov.settings import *  # noqa: F401,F403


class _NoMigrations:
    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None


MIGRATION_MODULES = _NoMigrations()
'''

FORM = {"name": "王小明", "age": 30, "purpose": "自用"}


def chain_bpmn(n: int) -> str:
    """A process of ``n`` sequential official user tasks."""
    nodes = "".join(f'<bpmn:userTask id="t{i}" name="步骤{i}" />' for i in range(1, n + 1))
    refs = "".join(f"<bpmn:flowNodeRef>t{i}</bpmn:flowNodeRef>" for i in range(1, n + 1))
    ids = ["start", *[f"t{i}" for i in range(1, n + 1)], "end_completed"]
    flows = "".join(
        f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}" />' for i, (a, b) in enumerate(pairwise(ids))
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions '
        'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">'
        f'<bpmn:process id="chain{n}" name="chain" isExecutable="true"><bpmn:laneSet id="ls">'
        f'<bpmn:lane id="official" name="official">{refs}</bpmn:lane></bpmn:laneSet>'
        f'<bpmn:startEvent id="start" />{nodes}<bpmn:endEvent id="end_completed" />{flows}'
        "</bpmn:process></bpmn:definitions>"
    )


def _django():
    import django

    django.setup()


def do_setup(workers: int) -> None:
    """Divisions, a department with one official per worker, citizens, the item; the processes loaded."""
    _django()
    from django.contrib.auth import get_user_model

    from dgov.kernel.models import Division, Organization
    from dgov.kernel.validators import make_uscc
    from dgov.services import processes
    from dgov.services.models import ServiceItem

    User = get_user_model()
    province = Division.objects.create(code="370000", name="山东省", full_name="山东省", level=1)
    dept = Organization.objects.create(
        name="山东省市场监督管理局",
        code="370000-SCJG",
        uscc=make_uscc("1", "1", "370000", serial=1),
        level=1,
        division=province,
        kind="SCJG",
    )
    for n in range(workers):
        User.objects.create_user(username=f"official{n}", password=None, kind="official", department=dept)
        User.objects.create_user(username=f"citizen{n}", password=None, kind="person")
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 2, "maxLength": 20},
            "age": {"type": "integer", "minimum": 0},
            "purpose": {"type": "string", "enum": ["自用", "经营"]},
        },
        "required": ["name", "age"],
    }
    for key in ("review", "chain100"):
        ServiceItem.objects.create(
            basic_code=f"bench-{key}",
            name="食品经营许可",
            type="licensing",
            legal_basis="《食品安全法》",
            department_kind="SCJG",
            legal_limit_days=20,
            promised_limit_days=5,
            form_schema=schema,
            process_key=key,
        )
    processes.load_builtin("review", actor="bench")
    processes.load_definition(chain_bpmn(100), actor="bench", source="chain100.bpmn")


def do_worker(n: int, seconds: float, start_at: float, out: Path) -> None:
    """Submit for ``seconds``, then complete this worker's 受理 tasks for ``seconds``; write counts."""
    _django()
    from django.contrib.auth import get_user_model

    from dgov.services import applications
    from dgov.services.models import ApplicationTask, ServiceItem

    User = get_user_model()
    citizen, official = User.objects.get(username=f"citizen{n}"), User.objects.get(username=f"official{n}")
    item = ServiceItem.objects.get(basic_code="bench-review")
    applications.submit(item, applicant=citizen, data=FORM, actor=citizen)  # warm caches
    while time.time() < start_at:
        time.sleep(0.01)
    submitted, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        applications.submit(item, applicant=citizen, data=FORM, actor=citizen)
        submitted += 1
    submit_s = time.perf_counter() - t0
    tasks = list(ApplicationTask.objects.filter(application__applicant=citizen, status="open").order_by("pk"))
    completed, t0 = 0, time.perf_counter()
    for task in tasks:
        if time.perf_counter() - t0 >= seconds:
            break
        applications.complete_task(task, actor=official, decision="accept")
        completed += 1
    complete_s = time.perf_counter() - t0
    out.write_text(
        json.dumps({"submitted": submitted, "submit_s": submit_s, "completed": completed, "complete_s": complete_s})
    )


def do_history(out: Path) -> None:
    """One 100-task application: state size and completion time after each completed task."""
    _django()
    from django.contrib.auth import get_user_model

    from dgov.services import applications
    from dgov.services.models import ServiceItem

    User = get_user_model()
    citizen, official = User.objects.get(username="citizen0"), User.objects.get(username="official0")
    item = ServiceItem.objects.get(basic_code="bench-chain100")
    app = applications.submit(item, applicant=citizen, data=FORM, actor=citizen)
    rows = []
    for step in range(1, 101):
        task = app.tasks.get(status="open")
        t0 = time.perf_counter()
        applications.complete_task(task, actor=official, decision="pass", data={"opinion": "同意" * 50})
        elapsed = time.perf_counter() - t0
        app.refresh_from_db()
        rows.append({"step": step, "bytes": len(json.dumps(app.workflow_state)), "ms": elapsed * 1000})
    out.write_text(json.dumps(rows))


def do_documents(count: int, out: Path) -> None:
    """Close ``count`` applications (受理, 审查, 准予), then time the worker drawing and signing each decision."""
    _django()
    from django.contrib.auth import get_user_model

    from dgov.services import applications, results
    from dgov.services.models import ServiceItem

    User = get_user_model()
    citizen, official = User.objects.get(username="citizen0"), User.objects.get(username="official0")
    item = ServiceItem.objects.get(basic_code="bench-review")
    apps, closing = [], []
    for _n in range(count + 1):  # the first one warms the fonts and the seal certificate
        app = applications.submit(item, applicant=citizen, data=FORM, actor=citizen)
        for decision in ("accept", "pass", "approve"):
            task = app.tasks.get(status="open")
            t0 = time.perf_counter()
            applications.complete_task(task, actor=official, decision=decision)
            if decision == "approve":
                closing.append((time.perf_counter() - t0) * 1000)
        apps.append(app.pk)
    drawing = []
    for pk in apps:
        t0 = time.perf_counter()
        results.render_result(pk)
        drawing.append((time.perf_counter() - t0) * 1000)
    out.write_text(json.dumps({"closing_ms": closing[1:], "drawing_ms": drawing[1:]}))


def main() -> int:
    """Parse arguments, set up a fresh database and run the phases in child processes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--documents", type=int, default=20, help="decision documents to draw and time")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        role, *rest = args.child
        if role == "setup":
            do_setup(int(rest[0]))
        elif role == "worker":
            do_worker(int(rest[0]), float(rest[1]), float(rest[2]), Path(rest[3]))
        elif role == "documents":
            do_documents(int(rest[0]), Path(rest[1]))
        else:
            do_history(Path(rest[0]))
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="dgov-bench-services-"))
    (workdir / "bench_services_settings.py").write_text(SETTINGS_TEMPLATE)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench_services_settings",
        "PYTHONPATH": os.pathsep.join([str(workdir), str(SRC), os.environ.get("PYTHONPATH", "")]),
        "DGOV_DATA_DIR": str(workdir / "data"),
        "DGOV_MASTER_KEY": secrets.token_hex(16),
        "DGOV_DEBUG": "0",
        "DGOV_LOG_LEVEL": "WARNING",
    }
    env.pop("DGOV_TESTING", None)
    pg_name = maintenance = ""
    if args.sqlite:
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
        database = "SQLite (WAL)"
    else:
        import psycopg

        parts = urlsplit(args.database_url)
        maintenance = urlunsplit(parts._replace(path="/postgres"))
        pg_name = f"dgov_bench_services_{os.getpid()}"
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{pg_name}"))
        database = "PostgreSQL"
    me = [sys.executable, __file__, "--child"]
    try:
        subprocess.run([sys.executable, "-m", "django", "migrate", "--run-syncdb", "-v0"], env=env, check=True)
        subprocess.run([*me, "setup", str(args.workers)], env=env, check=True)
        start_at = time.time() + 5
        procs = [
            subprocess.Popen(
                [*me, "worker", str(n), str(args.seconds), str(start_at), str(workdir / f"w{n}.json")], env=env
            )
            for n in range(args.workers)
        ]
        for proc in procs:
            if proc.wait() != 0:
                raise SystemExit("a worker failed")
        results = [json.loads((workdir / f"w{n}.json").read_text()) for n in range(args.workers)]
        subprocess.run([*me, "history", str(workdir / "history.json")], env=env, check=True)
        history = json.loads((workdir / "history.json").read_text())
        subprocess.run([*me, "documents", str(args.documents), str(workdir / "documents.json")], env=env, check=True)
        documents = json.loads((workdir / "documents.json").read_text())
    finally:
        if pg_name:
            import psycopg

            with psycopg.connect(maintenance, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)

    cores = os.cpu_count() or 1
    submit_rate = sum(r["submitted"] / r["submit_s"] for r in results)
    complete_rate = sum(r["completed"] / r["complete_s"] for r in results)
    camunda_per_core = CAMUNDA_TASKS_PER_S / CAMUNDA_VCPU
    print(
        f"\n一网通办 applications on {database}, {args.workers} worker processes, {args.seconds:g} s each phase, "
        f"{cores} cores (shared with the database)"
    )
    print(
        table(
            ["operation", "per second", "per core", "Camunda 8 (1x, 11 vCPU) per vCPU"],
            [
                ["submit (start BPMN process + persist)", f"{submit_rate:.0f}", f"{submit_rate / cores:.1f}", "—"],
                [
                    "complete user task",
                    f"{complete_rate:.0f}",
                    f"{complete_rate / cores:.1f}",
                    f"{camunda_per_core:.1f}",
                ],
            ],
        )
    )
    marks = [1, 10, 25, 50, 75, 100]
    window = {m: statistics.median(r["ms"] for r in history[max(0, m - 5) : m]) for m in marks}
    print("\n100-task process: compact state size and completion time against its history")
    print(
        table(
            ["completed tasks", "state bytes", "bytes per completed task", "completion ms (median of last 5)"],
            [[m, history[m - 1]["bytes"], f"{history[m - 1]['bytes'] / m:.0f}", f"{window[m]:.1f}"] for m in marks],
        )
    )
    closing, drawing = statistics.median(documents["closing_ms"]), statistics.median(documents["drawing_ms"])
    print(f"\nResult delivery, {len(documents['drawing_ms'])} approvals, one process")
    print(
        table(
            ["step", "median ms", "per second per process"],
            [
                ["closing completion (准予, e-licence step, outbox event)", f"{closing:.1f}", f"{1000 / closing:.0f}"],
                ["decision document drawn + PAdES-signed + sealed (worker)", f"{drawing:.0f}", f"{1000 / drawing:.1f}"],
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
