"""E-licence throughput: verifications through the HTTP API at 64 clients, offline verifications, bulk issuance.

Figures (issue 7): verifications per second through ``POST /api/v1/licences/verify/`` at 64
concurrent clients and offline verifications per second in-process, each for ES256 and SM2
credentials; issuance per second in bulk (``services.issue_many``). No target figure is set.

Steps: a fresh SQLite (WAL) database in a temporary directory (or a new database on the
PostgreSQL server of ``--database-url``, dropped afterwards), tables from the models
(``migrate --run-syncdb`` with migrations disabled, as the tests do); the province, its 民政厅 and
大数据局, the e-licence base library (``licence.index``, so bulk issuance writes its index records
as in production) and a marriage-certificate type. Then, in a child process with the benchmark's
settings:

* **bulk issuance** — ``services.issue_many`` of ``--issue`` licences per algorithm in one call
  (checks, identifiers, random status-list slots, one signature per credential, bulk inserts, the
  audit records and the base-library index rows; one transaction), timed end to end;
* the status lists are published (``credentials.publish_due``);
* **offline verification** — an :class:`~dgov.licenses.verification.OfflineVerifier` built from the
  issuer's JWK Set and the published status lists (as a verifier would cache them) verifies the
  issued credentials in turn for ``--seconds`` per algorithm, in this one process and thread: the
  whole check list (structure, algorithm, issuer, key, signature, identifier, validity, both
  status bits from the verified lists). Every answer must be ``valid``.

Then the web server is started as ``dgov serve`` starts it (Granian, :func:`dgov.server.web_command`,
``--workers`` × ``--threads``, DEBUG off, access log and verification log on at INFO) and ``wrk``
(2 threads, ``--clients`` connections, keep-alive) posts ``{"credential": …}`` bodies drawn at
random from ``--sample`` issued credentials per algorithm, then QR payloads; a warm-up of
``--warmup`` seconds precedes each measured run. Each request is a full online verification: the
per-address rate limit (set so high that it never refuses: one load generator is one address),
JSON parsing, signature, issuer and key (cached per process for ``KEY_CACHE_SECONDS``), the two
status bits read from the working copy of the lists (one statement) and the register record (one
statement), the answer with every check, and the log line. Any non-2xx answer counts as an error.

Run: ``.venv/bin/python bench/bench_licences.py [--issue 10000] [--seconds 15] [--clients 64]
[--database-url postgres://postgres@127.0.0.1:5432/postgres]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench_registry_api import wrk_load
from common import free_port, start_web_server, stop_process, table

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
ALGORITHMS = ("ES256", "SM2")
VERIFY_PATH = "/api/v1/licences/verify/"

SETTINGS_TEMPLATE = '''"""Settings of the licence benchmark: dgov's settings with migrations disabled."""
from dgov.settings import *  # noqa: F401,F403

# One load generator is one client address: a limit it never reaches (the limiter still runs).
LICENCE_VERIFY_RATE_PER_MINUTE = 1_000_000_000


class _NoMigrations:
    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None


MIGRATION_MODULES = _NoMigrations()
'''

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def resident_id(serial: int) -> str:
    """A valid (checksummed) resident ID number, distinct for serials below 13 million."""
    year, month, day = 1960 + serial % 40, serial // 40 % 12 + 1, serial // 480 % 28 + 1
    body = f"370102{year}{month:02d}{day:02d}{serial // 13440 % 1000:03d}"
    return body + _CHECK[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


# --- setup and in-process figures (a child process with the benchmark's settings) ----------------------


def setup(out: Path, n_issue: int, seconds: float, sample: int) -> None:
    """Issue in bulk (timed), publish, verify offline (timed); write the figures and request bodies."""
    import itertools

    import django

    django.setup()
    from dgov.kernel.models import Division, Organization
    from dgov.kernel.validators import make_uscc
    from dgov.licenses import credentials, qr, services, verification
    from dgov.licenses.models import Credential, Licence, LicenceType
    from dgov.registry import libraries

    province = Division.objects.create(code="370000", name="山东省", full_name="山东省", level=1)

    def department(code, name, kind, serial):
        return Organization.objects.create(
            name=name,
            code=code,
            uscc=make_uscc("1", "1", "370000", serial=serial),
            level=1,
            division=province,
            kind=kind,
        )

    mz = department("370000-MZ", "山东省民政厅", "MZ", 1)
    department("370000-DSJ", "山东省大数据局", "DSJ", 2)
    index_installed = True
    try:
        wanted = [d for d in libraries.load_definitions() if d["code"] == "licence.index"]
        libraries.install_libraries(actor="system:bench", province_code="370000", definitions=wanted)
    except Exception as exc:  # noqa: BLE001 - measured without the index, and said so
        index_installed = False
        print(f"base library not installed ({exc}); issuance measured without index records", file=sys.stderr)
    licence_type = LicenceType.objects.create(
        code="11100000000013127D001",
        name="结婚证",
        department=mz,
        issuer_kind="MZ",
        holder_kind="person",
        items=[
            {"name": "spouse_name", "label": "配偶姓名", "type": "string", "required": True},
            {"name": "spouse_id", "label": "配偶身份证件号", "type": "string", "required": True},
            {"name": "registered_on", "label": "登记日期", "type": "date", "required": True},
            {"name": "remark", "label": "备注", "type": "text"},
        ],
        validity={},
        sharing_type="conditional",
    )
    issuance = {}
    serial = 0
    for alg in ALGORITHMS:
        rows = []
        for _ in range(n_issue):
            serial += 1
            rows.append(
                {
                    "holder_name": f"王基准{serial}",
                    "holder_id": resident_id(serial),
                    "data": {
                        "spouse_name": f"李基准{serial}",
                        "spouse_id": resident_id(serial + 500_000),
                        "registered_on": "2026-05-20",
                    },
                }
            )
        began = time.perf_counter()
        services.issue_many(licence_type, rows, issuer=mz, actor="system:bench", source="bench", alg=alg)
        elapsed = time.perf_counter() - began
        issuance[alg] = {"n": n_issue, "seconds": elapsed, "rate": n_issue / elapsed}
    credentials.publish_due()

    verifier = verification.OfflineVerifier.from_database()
    offline, bodies, qr_bodies = {}, {}, {}
    for alg in ALGORITHMS:
        tokens = list(
            Credential.objects.filter(key__alg=alg).order_by("?").values_list("jws", flat=True)[: max(sample, 1)]
        )
        assert all(verifier.verify(token).valid for token in tokens), f"an {alg} credential does not verify offline"
        cycle = itertools.cycle(tokens)
        done = 0
        began = time.perf_counter()
        deadline = began + seconds
        while True:
            if not verifier.verify(next(cycle)).valid:
                raise RuntimeError("offline verification answered other than valid")
            done += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        offline[alg] = done / (now - began)
        bodies[alg] = [json.dumps({"credential": token}) for token in tokens]
        licences = Licence.objects.filter(credentials__key__alg=alg).select_related("issuer", "licence_type")
        qr_bodies[alg] = [
            json.dumps({"credential": qr.qr_url(licence)}) for licence in licences.order_by("?")[: max(sample // 5, 1)]
        ]
    out.write_text(
        json.dumps(
            {
                "issuance": issuance,
                "index_installed": index_installed,
                "offline": offline,
                "bodies": bodies,
                "qr_bodies": qr_bodies,
            }
        )
    )


# --- orchestration -------------------------------------------------------------------------------------


def probe(port: int, body: str) -> None:
    """One request before the load: it must answer 200 with the verdict valid."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", VERIFY_PATH, body=body, headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    answer = reply.read()
    if reply.status != 200 or json.loads(answer).get("verdict") != "valid":
        raise RuntimeError(f"probe failed: {reply.status} {answer[:400]!r}")


def main(argv: list[str] | None = None) -> int:
    """Set up, measure in-process, serve, load; print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issue", type=int, default=10_000, help="licences issued per algorithm (default 10,000)")
    parser.add_argument("--sample", type=int, default=1000, help="credentials per algorithm the load draws from")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--offline-seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="web worker processes (dgov serve's default 2)")
    parser.add_argument("--threads", type=int, default=4, help="Django threads per worker (dgov serve's default 4)")
    parser.add_argument("--database-url", default="", help="PostgreSQL server (default: SQLite in a temp dir)")
    parser.add_argument("--setup-into", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.setup_into:
        setup(Path(args.setup_into), args.issue, args.offline_seconds, args.sample)
        return 0
    if not shutil.which("wrk"):
        print("wrk is needed for the HTTP figures (apt-get install wrk)", file=sys.stderr)
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="dgov-bench-licences-"))
    (workdir / "bench_licences_settings.py").write_text(SETTINGS_TEMPLATE)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench_licences_settings",
        "PYTHONPATH": os.pathsep.join([str(workdir), str(SRC), os.environ.get("PYTHONPATH", "")]),
        "DGOV_DATA_DIR": str(workdir / "data"),
        "DGOV_MASTER_KEY": secrets.token_hex(16),
        "DGOV_DEBUG": "0",
        "DGOV_LOG_LEVEL": "INFO",
    }
    env.pop("DGOV_TESTING", None)
    pg_name = maintenance = ""
    if args.database_url:
        import psycopg

        parts = urlsplit(args.database_url)
        maintenance = urlunsplit(parts._replace(path="/postgres"))
        pg_name = f"dgov_bench_licences_{os.getpid()}"
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{pg_name}"))
        database = "PostgreSQL"
    else:
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
        database = "SQLite (WAL)"
    load = os.getloadavg()[0]
    server = None
    http_results = {}
    try:
        subprocess.run([sys.executable, "-m", "django", "migrate", "--run-syncdb", "-v0"], env=env, check=True)
        data_file = workdir / "data.json"
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--setup-into",
                str(data_file),
                "--issue",
                str(args.issue),
                "--offline-seconds",
                str(args.offline_seconds),
                "--sample",
                str(args.sample),
            ],
            env={**env, "DGOV_LOG_LEVEL": "WARNING"},
            check=True,
        )
        data = json.loads(data_file.read_text())
        port = free_port()
        server = start_web_server(env, port, workers=args.workers, threads=args.threads)
        scenarios = [(f"credential ({alg})", data["bodies"][alg]) for alg in ALGORITHMS]
        scenarios += [(f"QR URL ({alg})", data["qr_bodies"][alg]) for alg in ALGORITHMS]
        for _label, bodies in scenarios:
            probe(port, bodies[0])
        for label, bodies in scenarios:
            wrk_load(port, "POST", VERIFY_PATH, bodies, "", args.clients, args.warmup, workdir)
            http_results[label] = wrk_load(port, "POST", VERIFY_PATH, bodies, "", args.clients, args.seconds, workdir)
    finally:
        stop_process(server)
        if pg_name:
            import psycopg

            with psycopg.connect(maintenance, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)

    cores = os.cpu_count()
    print(
        f"\nLicence verification API, {args.clients} clients (wrk, 2 threads) against Granian "
        f"{args.workers} workers × {args.threads} threads on the same {cores}-core machine; {database}; "
        f"{args.seconds:.0f} s per scenario; load average before {load:.1f}"
    )
    rows = [[label, r["rps"], r["p50"], r["p99"], r["max"], r["errors"]] for label, r in http_results.items()]
    print(table(["POST /api/v1/licences/verify/", "per s", "p50 ms", "p99 ms", "max ms", "errors"], rows))
    print("\nOffline verification in-process (one thread, cached JWK Set and published status lists)")
    print(table(["algorithm", "verifications per s"], [[alg, data["offline"][alg]] for alg in ALGORITHMS]))
    index = "with" if data["index_installed"] else "WITHOUT"
    print(f"\nBulk issuance, services.issue_many in one call ({index} base-library index records)")
    print(
        table(
            ["algorithm", "licences", "seconds", "licences per s"],
            [[alg, r["n"], r["seconds"], r["rate"]] for alg, r in data["issuance"].items()],
        )
    )
    return 0 if all(r["errors"] == 0 for r in http_results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
