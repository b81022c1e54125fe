"""Exchange gateway throughput: granted reads, 64 concurrent clients, exchange log on and off (PostgreSQL).

Figure asked by issue 5: gateway throughput with grant check, field filtering and a hash-chained
log entry per call, on PostgreSQL, at 64 concurrent clients — calls/s, p50/p99, and the ratio to
the same endpoint with the exchange log turned off. GovStack's example target (100 req/s, 1 s max
latency) is the floor.

Steps: create a fresh database on the ``--database-url`` server (dropped afterwards, unless
``--keep``); create the tables from the models (``migrate --run-syncdb`` with migrations
disabled); load N person records into a registry owned by 省公安厅, publish a catalogue resource
whose items are linked to that registry (有条件共享), have 省民政厅 request it and 省公安厅 approve it
(a grant for ``name`` and ``birth_date``), and register 省民政厅's client-credentials client with
the scope ``exchange:call``; start the web server as ``dgov serve`` does (Granian, command line
from :mod:`dgov.server`, DEBUG off) and get a token from ``/oidc/token``; then for each scenario
warm up and measure for ``--seconds``:

* ``POST /api/v1/exchange/resources/{key}/records/query`` ``{"identifier": <ID number>, "items":
  ["name", "birth_date"]}`` with the exchange log on (the default: one SM3-chained entry plus the
  registry AccessLog row per call, committed by the process's log writer in batches — group
  commit — before each answer leaves);
* the same on a second server whose settings turn the exchange log off. The log can be turned off
  only in a benchmark: this script's settings module sets ``EXCHANGE_BENCHMARK = True`` and
  ``EXCHANGE_LOG_ENABLED`` (from ``BENCH_EXCHANGE_LOG``, read by this settings module only); in
  any other configuration ``EXCHANGE_LOG_ENABLED = False`` is ignored (system check exchange.E001).

Each call is complete: token validation, the per-client rate-limit bucket (leased from its row a
tenth of a second's worth at a time; the rate is set so high that it never refuses), resource and
grant lookup, the record lookup by ID number, SM4 decryption, field filtering, and the AccessLog
row (citizens' 谁查了我的数据) committed before the answer leaves. The load generator is ``wrk``
when installed, else Python threads with keep-alive connections (both from bench_registry_api.py);
it shares the machine with the server.

Run: ``.venv/bin/python bench/bench_exchange_gateway.py --n 100000
[--database-url postgres://postgres@127.0.0.1:5432/postgres] [--clients 64] [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import http.client
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from bench_registry_api import _rows, python_load, wrk_load
from common import free_port, start_web_server, stop_process, table

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
REGISTRY_CODE = "bench.person"
SAMPLE = 20_000
FLOOR_RPS = 100.0  # GovStack's example target, the floor

SETTINGS_TEMPLATE = '''"""Settings of the exchange gateway benchmark: dgov's, no migrations, the log switch."""
import os

from dgov.settings import *  # noqa: F401,F403


class _NoMigrations:
    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None


MIGRATION_MODULES = _NoMigrations()
# Turning the exchange log off is honoured only with this flag (dgov.exchange.services.log_enabled).
EXCHANGE_BENCHMARK = True
EXCHANGE_LOG_ENABLED = os.environ.get("BENCH_EXCHANGE_LOG", "1") == "1"
# The bucket is still taken (leased from its row, as in production) but never runs dry.
EXCHANGE_RATE_PER_SECOND = 1e9
EXCHANGE_RATE_BURST = 1e9
'''

PERSON_FIELDS = [
    {
        "name": "id_number",
        "label": "居民身份证号码",
        "type": "resident_id",
        "sensitivity": "personal",
        "authority": "GA",
    },
    {"name": "name", "label": "姓名", "type": "string", "sensitivity": "personal", "authority": "GA", "required": True},
    {"name": "gender", "label": "性别", "type": "enum", "choices": ["男", "女"], "authority": "GA"},
    {"name": "birth_date", "label": "出生日期", "type": "date", "authority": "GA"},
    {"name": "division_code", "label": "户籍地区划", "type": "division_code", "authority": "GA"},
    {"name": "phone", "label": "联系电话", "type": "phone", "sensitivity": "personal", "authority": "GA"},
    {"name": "address", "label": "住址", "type": "string", "sensitivity": "personal", "authority": "GA"},
    {
        "name": "marital_status",
        "label": "婚姻状况",
        "type": "enum",
        "choices": ["未婚", "已婚", "离婚", "丧偶"],
        "authority": "MZ|GA",
    },
]


def load(n: int, out: Path) -> None:
    """Registry with N records, a published resource, a grant and a gateway client; write what the run needs."""
    import django

    django.setup()
    from bench_registry_api import resident_id
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from dgov.catalog import services as catalog
    from dgov.catalog.models import ResourceClass
    from dgov.exchange import services as exchange
    from dgov.kernel.models import Division, Organization
    from dgov.kernel.validators import make_uscc
    from dgov.oidc.services import clients
    from dgov.registry import services

    actor = "system:bench"
    province = Division.objects.create(code="370000", name="山东省", full_name="山东省", level=1)
    orgs = {
        kind: Organization.objects.create(
            name=name,
            code=f"370000-{kind}",
            uscc=make_uscc("1", "1", "370000", serial=i),
            level=1,
            division=province,
            kind=kind,
        )
        for i, (kind, name) in enumerate((("GA", "山东省公安厅"), ("MZ", "山东省民政厅"), ("DSJ", "山东省大数据局")), 1)
    }
    users = {
        kind: get_user_model().objects.create_user(
            username=f"bench-{kind.lower()}", password=secrets.token_urlsafe(16), kind="official", department=org
        )
        for kind, org in orgs.items()
    }
    registry = services.create_registry(
        code=REGISTRY_CODE,
        name="人口（基准测试）",
        owner=orgs["GA"],
        library_code="population",
        identifier_field="id_number",
        actor=actor,
        fields=PERSON_FIELDS,
    )
    rng = random.Random(20261129)
    start = time.perf_counter()
    done = 0
    while done < n:
        size = min(50_000, n - done)
        with transaction.atomic():
            services.bulk_create_records(
                registry, list(_rows(done, size, rng)), actor=actor, source=orgs["GA"], validate=False
            )
        done += size
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE registry_record, registry_recordkey")
        print(f"  loaded {done:,}/{n:,} records", flush=True)
    load_seconds = time.perf_counter() - start

    catalog.ensure_standard_classes(actor=actor)
    resource = catalog.create_resource(
        actor=users["GA"],
        classification=ResourceClass.objects.get(code="101001"),
        data={
            "name": "人口基本信息（基准测试）",
            "summary": "基准测试用人口基本信息。",
            "format": "database",
            "sharing_type": "conditional",
            "sharing_conditions": "基准测试",
            "sharing_mode": "api",
            "open_type": "none",
            "update_cycle": "realtime",
        },
        items=[{"registry": REGISTRY_CODE, "registry_field": f} for f in ("id_number", "name", "birth_date", "phone")],
    )
    catalog.publish(resource, actor=users["DSJ"], note="基准测试")
    resource.refresh_from_db()
    request = exchange.request_share(
        resource,
        actor=users["MZ"],
        items={"name": "full", "birth_date": "full"},
        purpose="基准测试",
        legal_basis="基准测试",
        period_end=datetime.date.today() + datetime.timedelta(days=30),
    )
    exchange.approve(request, actor=users["GA"])
    client, secret = clients.create_client(
        name="民政业务系统（基准测试）",
        organization=orgs["MZ"],
        actor=actor,
        grant_types=["client_credentials"],
        scopes=["exchange:call"],
        client_id="bench-mz",
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    numbers = [resident_id(i) for i in sorted(rng.sample(range(n), min(SAMPLE, n)))]
    out.write_text(
        json.dumps(
            {
                "client_id": client.client_id,
                "secret": secret,
                "numbers": numbers,
                "resource": resource.code,
                "load_seconds": load_seconds,
                "n": n,
            }
        )
    )


def _start_server(env: dict, port: int, workers: int, threads: int, log_on: bool) -> subprocess.Popen:
    """Start the web server as ``dgov serve`` does, with the exchange log on or off; wait until it answers."""
    return start_web_server(
        env, port, workers=workers, threads=threads, extra={"BENCH_EXCHANGE_LOG": "1" if log_on else "0"}
    )


def _token(port: int, client_id: str, secret: str) -> str:
    """A client-credentials access token from the server's token endpoint."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    conn.request(
        "POST",
        "/oidc/token",
        body=urlencode({"grant_type": "client_credentials"}),
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    reply = conn.getresponse()
    body = reply.read()
    if reply.status != 200:
        raise RuntimeError(f"token request failed: {reply.status} {body[:300]!r}")
    return json.loads(body)["access_token"]


def main(argv: list[str] | None = None) -> int:
    """Load, serve with and without the exchange log, measure; exit 1 below the GovStack floor at N ≥ 100k."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="records to load (default 100,000)")
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server (a new database is created on it and dropped)",
    )
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1, help="web worker processes (default 1)")
    parser.add_argument(
        "--threads",
        type=int,
        default=16,
        help="Django threads per worker (default 16: calls wait for the log's group commit, and more waiting "
        "calls make bigger batches)",
    )
    parser.add_argument("--loader", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--load-into", help=argparse.SUPPRESS)  # internal: child process that loads data
    args = parser.parse_args(argv)

    if args.load_into:
        load(args.n, Path(args.load_into))
        return 0

    import psycopg

    parts = urlsplit(args.database_url)
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    name = f"dgov_bench_exchange_{os.getpid()}"
    workdir = Path(tempfile.mkdtemp(prefix="dgov-bench-exchange-"))
    (workdir / "bench_exchange_settings.py").write_text(SETTINGS_TEMPLATE)
    bench_dir = str(Path(__file__).resolve().parent)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench_exchange_settings",
        "PYTHONPATH": os.pathsep.join([str(workdir), bench_dir, str(SRC), os.environ.get("PYTHONPATH", "")]),
        "DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}")),
        "DGOV_DATA_DIR": str(workdir / "data"),
        "DGOV_MASTER_KEY": secrets.token_hex(16),
        "DGOV_DEBUG": "0",
        "DGOV_LOG_LEVEL": "WARNING",
        "DGOV_AUDIT_CHECKPOINT_EVERY": "0",
    }
    env.pop("DGOV_TESTING", None)
    server = None
    results: dict[str, dict] = {}
    use_wrk = args.loader == "wrk" or (args.loader == "auto" and shutil.which("wrk"))
    try:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        subprocess.run([sys.executable, "-m", "django", "migrate", "--run-syncdb", "-v0"], env=env, check=True)
        print(f"loading {args.n:,} records into {name} …", flush=True)
        data_file = workdir / "data.json"
        subprocess.run(
            [sys.executable, __file__, "--n", str(args.n), "--load-into", str(data_file)], env=env, check=True
        )
        data = json.loads(data_file.read_text())
        url = f"/api/v1/exchange/resources/{data['resource'].replace('/', '-')}/records/query"
        bodies = [json.dumps({"identifier": n, "items": ["name", "birth_date"]}) for n in data["numbers"]]
        for label, log_on in (
            (f"exchange log on, {args.clients} clients", True),
            (f"exchange log off, {args.clients} clients", False),
        ):
            port = free_port()
            server = _start_server(env, port, args.workers, args.threads, log_on)
            auth = f"Bearer {_token(port, data['client_id'], data['secret'])}"
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            probe.request(
                "POST", url, body=bodies[0], headers={"Authorization": auth, "Content-Type": "application/json"}
            )
            reply = probe.getresponse()
            body = json.loads(reply.read())
            if reply.status != 200 or (body["exchange"] is None) == log_on:
                raise RuntimeError(f"probe failed: {reply.status} {body!r:.300}")
            if use_wrk:
                wrk_load(port, "POST", url, bodies, auth, args.clients, args.warmup, workdir)
                results[label] = wrk_load(port, "POST", url, bodies, auth, args.clients, args.seconds, workdir)
            else:
                requests = [("POST", url, item.encode()) for item in bodies]
                python_load(port, requests, auth, args.clients, args.warmup)
                results[label] = python_load(port, requests, auth, args.clients, args.seconds)
            stop_process(server)
            server = None
    finally:
        stop_process(server)
        if args.keep:
            print(f"database kept: {name}")
        else:
            with psycopg.connect(maintenance, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\nexchange gateway, {data['n']:,} records on PostgreSQL; {args.seconds:.0f} s per scenario, "
        f"{args.workers} worker(s), {args.threads} Django threads each; "
        f"load generator: {'wrk' if use_wrk else 'python'}; load average {os.getloadavg()[0]:.1f}"
    )
    rows = [[label, r["rps"], r["p50"], r["p95"], r["p99"], r["max"], r["errors"]] for label, r in results.items()]
    print(table(["scenario", "calls/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"], rows))
    on, off = results[f"exchange log on, {args.clients} clients"], results[f"exchange log off, {args.clients} clients"]
    print(f"log on / log off: {on['rps'] / off['rps']:.2f} of the throughput, p99 {on['p99'] / off['p99']:.2f}×")
    verdict = on["rps"] >= FLOOR_RPS and on["max"] <= 1000
    print(f"GovStack floor (≥ {FLOOR_RPS:.0f} calls/s, max ≤ 1 s) with the log on: {'yes' if verdict else 'no'}")
    return 1 if (not verdict and data["n"] >= 100_000) else 0


if __name__ == "__main__":
    sys.exit(main())
