"""Registry API read latency: GET one record by uid with 32 concurrent clients over N records (PostgreSQL).

Target (issue 3): p99 under 20 ms at 32 concurrent clients with 1,000,000 records.

Steps: create a fresh database on the ``--database-url`` server (dropped afterwards, unless
``--keep``); create the tables from the models (``migrate --run-syncdb`` with migrations disabled,
as the test suite does, so the benchmark does not depend on generated migration files); load N
person records with ``services.bulk_create_records(validate=False)`` (the values are generated
valid: resident ID numbers with correct check digits) and one API client; start the web server
as ``dgov serve`` does (Granian's RSGI interface, command line from :mod:`dgov.server`; one worker
process by default — on two cores shared with PostgreSQL, ``dgov worker`` and the load generator,
a second web process adds some throughput but the processes preempt each other and the tail
grows; DEBUG off, access log on as in production); then for each scenario warm up and measure for
``--seconds``:

* ``GET  /api/v1/registries/data/bench.person/1/{uid}`` — read by record identifier (uid), answered
  by the registry read fast path on the server's event loop (ADR 0013);
* the same read with the fast path switched off (``DGOV_REGISTRY_FAST_READ=0``, a second server):
  the full Django stack, the comparison the ratio is reported against;
* ``POST /api/v1/registries/data/bench.person/1/read`` — read by the ID number in the body (Django).

Each request is a full read: client authentication (HTTP Basic, HMAC-SM3), the record lookup,
SM4 decryption of the personal fields, masking and one AccessLog row committed before the answer
leaves (a line in the access-log journal on the fast path, which ``dgov worker`` copies into the
table while the reads run; one insert per request on the Django path). The load generator is
``wrk`` when installed (``--loader auto``), else a Python one (threads with keep-alive
``http.client`` connections); it runs on the same machine and takes CPU from the server.

Run: ``.venv/bin/python bench/bench_registry_api.py --n 1000000
[--database-url postgres://postgres@127.0.0.1:5432/postgres] [--keep | --reuse NAME]``.
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
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from common import free_port, start_web_server, stop_process

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
TARGET_P99_MS = 20.0
REGISTRY_CODE = "bench.person"
SAMPLE = 20_000  # identifiers the load generator picks from (random over the whole table)

SETTINGS_TEMPLATE = '''"""Settings of the registry API benchmark: dgov's settings with migrations disabled."""
from dgov.settings import *  # noqa: F401,F403


class _NoMigrations:
    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None


MIGRATION_MODULES = _NoMigrations()
'''

WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local method = os.getenv("BENCH_METHOD")
local auth = os.getenv("BENCH_AUTH")
local bodies = method == "POST"
request = function()
  local item = paths[math.random(#paths)]
  local headers = {["Authorization"] = auth, ["X-Purpose"] = "bench"}
  if bodies then
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", os.getenv("BENCH_URL"), headers, item)
  end
  return wrk.format("GET", item, headers)
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH-RESULT %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
"""


# --- Data generation (runs in a child process with the benchmark's settings) -----------------------

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_AREAS = ("370102", "370103", "370104", "370105", "370112", "370202", "370203", "370211", "370302", "370303")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"


def resident_id(i: int) -> str:
    """A valid GB 11643 number, unique for i < 3,650,000 (area, birth date and sequence from i)."""
    area = _AREAS[i % len(_AREAS)]
    day = datetime.date(1950, 1, 1) + datetime.timedelta(days=(i // len(_AREAS)) // 1000)
    body = f"{area}{day:%Y%m%d}{(i // len(_AREAS)) % 1000:03d}"
    return body + _CHECK[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


def _rows(start: int, count: int, rng: random.Random):
    """Person rows ``start`` … ``start + count - 1`` (cleaned values)."""
    for i in range(start, start + count):
        number = resident_id(i)
        yield {
            "id_number": number,
            "name": rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(_GIVEN),
            "gender": "男" if int(number[16]) % 2 else "女",
            "birth_date": f"{number[6:10]}-{number[10:12]}-{number[12:14]}",
            "division_code": number[:6],
            "phone": f"13{rng.randrange(10**9):09d}",
            "address": f"山东省济南市历下区泉城路{rng.randrange(1, 999)}号",
            "marital_status": rng.choice(["未婚", "已婚", "离婚", "丧偶"]),
        }


def load(n: int, out: Path) -> None:
    """Create the registry, the client and N records; write credentials and a sample of keys to ``out``."""
    import django

    django.setup()
    from django.db import connection, transaction

    from dgov.identity.services import create_api_client
    from dgov.kernel.models import Division, Organization
    from dgov.registry import services
    from dgov.registry.models import Record

    actor = "system:bench"
    province = Division.objects.create(code="370000", name="山东省", full_name="山东省", level=1)
    ga = Organization.objects.create(
        name="山东省公安厅", code="370000-GA", uscc="11370000004312345X", level=1, division=province, kind="GA"
    )
    registry = services.create_registry(
        code=REGISTRY_CODE,
        name="人口（基准测试）",
        owner=ga,
        library_code="population",
        identifier_field="id_number",
        actor=actor,
        fields=[
            {"name": "id_number", "label": "居民身份证号码", "type": "resident_id", "sensitivity": "personal",
             "authority": "GA"},
            {"name": "name", "label": "姓名", "type": "string", "sensitivity": "personal", "authority": "GA",
             "required": True},
            {"name": "gender", "label": "性别", "type": "enum", "choices": ["男", "女"], "authority": "GA"},
            {"name": "birth_date", "label": "出生日期", "type": "date", "authority": "GA"},
            {"name": "division_code", "label": "户籍地区划", "type": "division_code", "authority": "GA"},
            {"name": "phone", "label": "联系电话", "type": "phone", "sensitivity": "personal", "lookup": True,
             "authority": "GA"},
            {"name": "address", "label": "住址", "type": "string", "sensitivity": "personal", "authority": "GA"},
            {"name": "marital_status", "label": "婚姻状况", "type": "enum",
             "choices": ["未婚", "已婚", "离婚", "丧偶"], "authority": "MZ|GA"},
        ],
    )
    client, secret = create_api_client("基准测试客户端", ga, ["registry:read"], actor=actor, client_id="bench")
    rng = random.Random(20261128)
    start = time.perf_counter()
    done = 0
    chunk = 50_000
    while done < n:
        size = min(chunk, n - done)
        rows = list(_rows(done, size, rng))
        with transaction.atomic():
            services.bulk_create_records(registry, rows, actor=actor, source=ga, validate=False)
        done += size
        # Fresh statistics after each chunk: planned on the empty table's statistics, the engine's
        # uniqueness check (digest IN (...)) degrades into sequential scans as the table grows.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE registry_record, registry_recordkey")
        elapsed = time.perf_counter() - start
        print(f"  loaded {done:,}/{n:,} records ({done / elapsed:,.0f} rows/s)", flush=True)
    load_seconds = time.perf_counter() - start
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    pick = sorted(rng.sample(range(n), min(SAMPLE, n)))
    numbers = [resident_id(i) for i in pick]
    uids = Record.objects.filter(registry=registry).order_by("?").values_list("uid", flat=True)[:SAMPLE]
    uids = [str(uid) for uid in uids]
    out.write_text(
        json.dumps(
            {"client_id": client.client_id, "secret": secret, "uids": uids, "numbers": numbers,
             "load_seconds": load_seconds, "n": n}
        )
    )


# --- Load generation -------------------------------------------------------------------------------


def _percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of sorted ``values``."""
    if not values:
        return float("nan")
    rank = max(0, min(len(values) - 1, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[rank]


def python_load(port: int, requests: list[tuple[str, str, bytes | None]], auth: str, clients: int,
                seconds: float) -> dict:
    """Closed-loop load: ``clients`` threads, each with a keep-alive connection, for ``seconds``."""
    deadline = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients

    def worker(slot: int) -> None:
        rng = random.Random(slot)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = latencies[slot]
        while time.perf_counter() < deadline:
            method, path, body = rng.choice(requests)
            headers = {"Authorization": auth, "X-Purpose": "bench"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            began = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors[slot] += 1
            except (OSError, http.client.HTTPException):
                errors[slot] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            mine.append((time.perf_counter() - began) * 1000)
        conn.close()

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    duration = time.perf_counter() - began
    merged = sorted(v for chunk in latencies for v in chunk)
    return {
        "requests": len(merged),
        "errors": sum(errors),
        "rps": len(merged) / duration,
        "p50": _percentile(merged, 50),
        "p95": _percentile(merged, 95),
        "p99": _percentile(merged, 99),
        "max": merged[-1] if merged else float("nan"),
    }


def wrk_load(port: int, method: str, url: str, items: list[str], auth: str, clients: int, seconds: float,
             workdir: Path) -> dict:
    """The same load with wrk (2 threads, ``clients`` connections); latencies from its histogram."""
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT)
    paths = workdir / "items.txt"
    paths.write_text("\n".join(items) + "\n")
    env = {**os.environ, "BENCH_PATHS": str(paths), "BENCH_METHOD": method, "BENCH_AUTH": auth, "BENCH_URL": url}
    result = subprocess.run(
        ["wrk", f"-t{min(2, clients)}", f"-c{clients}", f"-d{max(1, int(seconds))}s", "--timeout", "10s",
         "-s", str(script), f"http://127.0.0.1:{port}/"],
        env=env, capture_output=True, text=True, check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("BENCH-RESULT"))
    requests, duration_us, errors, p50, p95, p99, worst, _mean = (float(x) for x in line.split()[1:])
    return {
        "requests": int(requests),
        "errors": int(errors),
        "rps": requests / (duration_us / 1e6),
        "p50": p50 / 1000,
        "p95": p95 / 1000,
        "p99": p99 / 1000,
        "max": worst / 1000,
    }


# --- Orchestration --------------------------------------------------------------------------------


def _start_server(env: dict, port: int, workers: int, threads: int, fast: bool) -> subprocess.Popen:
    """Start the web server as ``dgov serve`` does, with the fast path on or off; wait until it answers."""
    return start_web_server(
        env, port, workers=workers, threads=threads, extra={"DGOV_REGISTRY_FAST_READ": "1" if fast else "0"}
    )


def main(argv: list[str] | None = None) -> int:
    """Load, serve, measure; exit 1 when p99 of the read by uid misses the target at N ≥ 1M."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="records to load (default 1,000,000)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server (a new database is created on it and dropped)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1, help="web worker processes (default 1)")
    parser.add_argument("--threads", type=int, default=8, help="Django threads per worker (default 8)")
    parser.add_argument("--loader", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--keep", action="store_true", help="keep the database (printed) for another run")
    parser.add_argument("--reuse", metavar="NAME", help="measure a database kept by an earlier --keep run")
    parser.add_argument("--load-into", help=argparse.SUPPRESS)  # internal: child process that loads data
    args = parser.parse_args(argv)

    if args.load_into:
        load(args.n, Path(args.load_into))
        return 0

    import psycopg

    parts = urlsplit(args.database_url)
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    name = args.reuse or f"dgov_bench_api_{os.getpid()}"
    keep = args.keep or bool(args.reuse)
    workdir = Path(tempfile.mkdtemp(prefix="dgov-bench-api-"))
    (workdir / "bench_api_settings.py").write_text(SETTINGS_TEMPLATE)
    kept_file = Path(tempfile.gettempdir()) / f"{name}.json"
    if args.reuse:
        kept = json.loads(kept_file.read_text())
        master_key = kept["master_key"]
    else:
        master_key = secrets.token_hex(16)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench_api_settings",
        "PYTHONPATH": os.pathsep.join([str(workdir), str(SRC), os.environ.get("PYTHONPATH", "")]),
        "DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}")),
        "DGOV_DATA_DIR": str(workdir / "data"),
        "DGOV_MASTER_KEY": master_key,
        "DGOV_DEBUG": "0",
        "DGOV_LOG_LEVEL": "WARNING",
        "DGOV_AUDIT_CHECKPOINT_EVERY": "0",
    }
    env.pop("DGOV_TESTING", None)
    server = worker = None
    try:
        if args.reuse:
            data = kept["data"]
            # Tables added since the database was loaded (the access-log journal markers, say).
            subprocess.run([sys.executable, "-m", "django", "migrate", "--run-syncdb", "-v0"], env=env, check=True)
        else:
            with psycopg.connect(maintenance, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            subprocess.run([sys.executable, "-m", "django", "migrate", "--run-syncdb", "-v0"], env=env, check=True)
            print(f"loading {args.n:,} records into {name} …", flush=True)
            data_file = workdir / "data.json"
            subprocess.run([sys.executable, __file__, "--n", str(args.n), "--load-into", str(data_file)], env=env,
                           check=True)
            data = json.loads(data_file.read_text())
            if keep:
                kept_file.write_text(json.dumps({"master_key": master_key, "data": data}))
        token = base64.b64encode(f"{data['client_id']}:{data['secret']}".encode()).decode()
        auth = f"Basic {token}"
        base = f"/api/v1/registries/data/{REGISTRY_CODE}/1"
        by_uid = ("GET", base + "/read", [f"{base}/{uid}" for uid in data["uids"]])
        by_number = ("POST", base + "/read",
                     [json.dumps({"query": {"content": {"id_number": n}}}) for n in data["numbers"]])
        use_wrk = args.loader == "wrk" or (args.loader == "auto" and shutil.which("wrk"))
        results = {}
        plans = [
            (True, [(f"GET by uid, fast path, {args.clients} clients", args.clients, by_uid),
                    ("GET by uid, fast path, 1 client", 1, by_uid)]),
            (False, [(f"GET by uid, Django path, {args.clients} clients", args.clients, by_uid),
                     (f"POST read by ID number, {args.clients} clients", args.clients, by_number)]),
        ]
        # The background worker runs as under `dgov serve`: it moves the fast path's access-log
        # journal into the database, on the same cores, while the reads are measured.
        worker = subprocess.Popen([sys.executable, "-m", "django", "worker", "--interval", "0.5"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for fast, runs in plans:
            port = free_port()
            server = _start_server(env, port, args.workers, args.threads, fast)
            # A request that fails here fails the benchmark instead of measuring error pages.
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            probe.request("GET", by_uid[2][0], headers={"Authorization": auth})
            reply = probe.getresponse()
            body = reply.read()
            if reply.status != 200:
                raise RuntimeError(f"probe failed: {reply.status} {body[:300]!r}")
            for label, clients, (method, url, items) in runs:
                if use_wrk:
                    wrk_load(port, method, url, items, auth, clients, args.warmup, workdir)
                    results[label] = wrk_load(port, method, url, items, auth, clients, args.seconds, workdir)
                else:
                    requests = [("GET", item, None) if method == "GET" else ("POST", url, item.encode())
                                for item in items]
                    python_load(port, requests, auth, clients, args.warmup)
                    results[label] = python_load(port, requests, auth, clients, args.seconds)
            stop_process(server)
            server = None
        stop_process(worker)
        worker = None
    finally:
        stop_process(server)
        stop_process(worker)
        if keep:
            print(f"database kept: {name} (measure it again with --reuse {name})")
        else:
            with psycopg.connect(maintenance, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import table

    loaded = "" if args.reuse else (f" (loaded in {data['load_seconds']:.0f} s, "
                                     f"{data['n'] / data['load_seconds']:,.0f} rows/s)")
    print(f"\nregistry API, {data['n']:,} records on PostgreSQL{loaded}; {args.seconds:.0f} s per scenario, "
          f"Granian RSGI, {args.workers} worker(s), {args.threads} Django threads each; "
          f"load generator: {'wrk' if use_wrk else 'python'}; load average {os.getloadavg()[0]:.1f}")
    rows = [
        [label, r["rps"], r["p50"], r["p95"], r["p99"], r["max"], r["errors"]]
        for label, r in results.items()
    ]
    print(table(["scenario", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"], rows))
    fast = results[f"GET by uid, fast path, {args.clients} clients"]
    slow = results[f"GET by uid, Django path, {args.clients} clients"]
    print(f"fast path / Django path: {fast['rps'] / slow['rps']:.1f}× the throughput, "
          f"p99 {slow['p99'] / fast['p99']:.1f}× lower")
    p99 = fast["p99"]
    verdict = "yes" if p99 < TARGET_P99_MS else "no"
    print(f"p99 of GET by uid at {args.clients} clients < {TARGET_P99_MS:.0f} ms: {verdict} ({p99:.1f} ms)")
    return 1 if (verdict == "no" and data["n"] >= 1_000_000) else 0


if __name__ == "__main__":
    sys.exit(main())
