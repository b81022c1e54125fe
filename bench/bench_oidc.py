"""OIDC provider throughput per core: client-credentials grants, introspection, authorization-code round trips.

Figures (issue 4): client-credentials token issuance per second and token introspection per
second, per core, against Keycloak's published sizing figure — 1 vCPU for every 120
client-credentials grants per second ("Concepts for sizing CPU and memory resources", Keycloak
24–26 high-availability guide; a published figure, not run here; Keycloak's load opens a new TLS
connection per grant, ours is plain HTTP with keep-alive on loopback) — and authorization-code
round trips per second with the login excluded (a session made beforehand).

Steps: a fresh SQLite (WAL) database in a temporary directory (or a new database on the
PostgreSQL server of ``--database-url``, dropped afterwards), tables from the models
(``migrate --run-syncdb`` with migrations disabled, as the tests do); a department, a citizen
with a logged-in session, a confidential client for client credentials and a first-party client
for the code flow, the RS256 signing key and one access token to introspect. The web server is
started as ``dgov serve`` does (Granian, :func:`dgov.server.web_command`), **one worker pinned to
CPU 0** with ``taskset`` (its threads, Python and Rust, share that core); the load generators run
on CPU 1: ``wrk`` (one thread, ``--clients`` connections) for the two back-channel calls, and a
Python loop (threads with keep-alive connections) for the code flow, which must read each
authorization response before redeeming its code. Every grant is a full one: client
authentication (HMAC-SM3), RS256 signing, an AccessToken row and an audit-chain record (with an
SM2-signed checkpoint every 1,000 records) committed before the answer.

Run: ``.venv/bin/python bench/bench_oidc.py [--seconds 10] [--database-url postgres://…]``.
Exit status 1 when client-credentials grants per core fall below Keycloak's 120/s.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from common import free_port, start_web_server, stop_process

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
KEYCLOAK_CC_PER_VCPU = 120.0
REDIRECT = "https://rp.example/cb"

SETTINGS_TEMPLATE = '''"""Settings of the OIDC benchmark: dgov's settings with migrations disabled."""
from dgov.settings import *  # noqa: F401,F403


class _NoMigrations:
    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None


MIGRATION_MODULES = _NoMigrations()
'''

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
done = function(summary, latency, requests)
  io.write(string.format("BENCH-RESULT %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, latency.mean))
end
"""


# --- setup (a child process with the benchmark's settings) -------------------------------------------


def setup(out: Path) -> None:
    """Create the department, users, clients, a logged-in session and a token to introspect."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client as TestClient

    from dgov.kernel.models import Division, Organization
    from dgov.oidc.services import clients, keys, tokens

    province = Division.objects.create(code="370000", name="山东省", full_name="山东省", level=1)
    ga = Organization.objects.create(
        name="山东省公安厅", code="370000-GA", uscc="11370000004312345X", level=1, division=province, kind="GA"
    )
    actor = "system:bench"
    service, service_secret = clients.create_client(
        name="基准测试后台服务",
        organization=ga,
        actor=actor,
        client_id="bench-cc",
        grant_types=["client_credentials"],
        scopes=["registry:read"],
    )
    rp, rp_secret = clients.create_client(
        name="基准测试门户",
        organization=ga,
        actor=actor,
        client_id="bench-rp",
        redirect_uris=[REDIRECT],
        grant_types=["authorization_code", "refresh_token"],
        scopes=["openid", "profile"],
        first_party=True,
    )
    keys.active_key("RS256")
    user = get_user_model().objects.create_user(
        username="bench-citizen", password=secrets.token_urlsafe(16), kind="person", display_name="王基准"
    )
    browser = TestClient()
    browser.force_login(user)
    token = tokens.client_credentials(service, scope="registry:read")["access_token"]
    out.write_text(
        json.dumps(
            {
                "cc": [service.client_id, service_secret],
                "rp": [rp.client_id, rp_secret],
                "cookie": [settings.SESSION_COOKIE_NAME, browser.cookies[settings.SESSION_COOKIE_NAME].value],
                "token": token,
            }
        )
    )


# --- load generation ----------------------------------------------------------------------------------


def basic(client_id: str, secret: str) -> str:
    """An HTTP Basic Authorization value."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def wrk_post(port: int, path: str, body: str, auth: str, clients: int, seconds: float, workdir: Path, cpu: str):
    """POST the same form with wrk (one thread on ``cpu``); return rate and latencies (ms)."""
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT)
    env = {**os.environ, "BENCH_BODY": body, "BENCH_AUTH": auth}
    cmd = [
        "wrk",
        "-t1",
        f"-c{clients}",
        f"-d{max(1, int(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{path}",
    ]
    if cpu and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("BENCH-RESULT"))
    requests, duration_us, errors, p50, p99, worst, _mean = (float(x) for x in line.split()[1:])
    return {
        "rps": requests / (duration_us / 1e6),
        "requests": int(requests),
        "errors": int(errors),
        "p50": p50 / 1000,
        "p99": p99 / 1000,
        "max": worst / 1000,
    }


def code_flow_load(port: int, data: dict, clients: int, seconds: float) -> dict:
    """Closed-loop authorization-code round trips: GET /oidc/authorize (session), POST /oidc/token."""
    cookie = f"{data['cookie'][0]}={data['cookie'][1]}"
    auth = basic(*data["rp"])
    deadline = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.perf_counter() < deadline:
            verifier = secrets.token_urlsafe(48)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            query = urlencode(
                {
                    "response_type": "code",
                    "client_id": data["rp"][0],
                    "redirect_uri": REDIRECT,
                    "scope": "openid profile",
                    "state": secrets.token_hex(8),
                    "nonce": secrets.token_hex(8),
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                }
            )
            began = time.perf_counter()
            try:
                conn.request("GET", f"/oidc/authorize?{query}", headers={"Cookie": cookie})
                reply = conn.getresponse()
                reply.read()
                code = parse_qs(urlsplit(reply.getheader("Location", "")).query).get("code", [""])[0]
                if reply.status != 302 or not code:
                    errors[slot] += 1
                    continue
                form = urlencode(
                    {
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": REDIRECT,
                        "code_verifier": verifier,
                    }
                )
                conn.request(
                    "POST",
                    "/oidc/token",
                    body=form,
                    headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"},
                )
                reply = conn.getresponse()
                body = reply.read()
                if reply.status != 200 or b"id_token" not in body:
                    errors[slot] += 1
                    continue
            except (OSError, http.client.HTTPException):
                errors[slot] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            latencies[slot].append((time.perf_counter() - began) * 1000)
        conn.close()

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    duration = time.perf_counter() - began
    merged = sorted(v for chunk in latencies for v in chunk)

    def pct(p: float) -> float:
        return merged[max(0, min(len(merged) - 1, int(round(p / 100 * len(merged) + 0.5)) - 1))] if merged else 0.0

    return {
        "rps": len(merged) / duration,
        "requests": len(merged),
        "errors": sum(errors),
        "p50": pct(50),
        "p99": pct(99),
        "max": merged[-1] if merged else 0.0,
    }


# --- orchestration ---------------------------------------------------------------------------------------


def _start_server(env: dict, port: int, threads: int, cpu: str) -> subprocess.Popen:
    """Start one worker as ``dgov serve`` does, pinned to ``cpu``."""
    return start_web_server(
        env, port, workers=1, threads=threads, extra={"DGOV_ACCESS_LOG": "0"}, cpu=cpu,
        ready_path="/.well-known/openid-configuration",
    )


def main(argv: list[str] | None = None) -> int:
    """Set up, serve on one pinned core, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--flow-clients", type=int, default=4, help="code-flow loader threads (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="application threads of the one worker")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--load-cpu", default="1")
    parser.add_argument("--database-url", default="", help="PostgreSQL server (default: SQLite in a temp dir)")
    parser.add_argument("--setup-into", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.setup_into:
        setup(Path(args.setup_into))
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="dgov-bench-oidc-"))
    (workdir / "bench_oidc_settings.py").write_text(SETTINGS_TEMPLATE)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench_oidc_settings",
        "PYTHONPATH": os.pathsep.join([str(workdir), str(SRC), os.environ.get("PYTHONPATH", "")]),
        "DGOV_DATA_DIR": str(workdir / "data"),
        "DGOV_MASTER_KEY": secrets.token_hex(16),
        "DGOV_DEBUG": "0",
        "DGOV_LOG_LEVEL": "WARNING",
        "DGOV_OIDC_ACCESS_TOKEN_SECONDS": "3600",
    }
    env.pop("DGOV_TESTING", None)
    pg_name = maintenance = ""
    if args.database_url:
        import psycopg

        parts = urlsplit(args.database_url)
        maintenance = urlunsplit(parts._replace(path="/postgres"))
        pg_name = f"dgov_bench_oidc_{os.getpid()}"
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{pg_name}"))
        database = "PostgreSQL"
    else:
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
        database = "SQLite (WAL)"
    load = os.popen("uptime").read().strip()
    server = None
    results = {}
    try:
        subprocess.run([sys.executable, "-m", "django", "migrate", "--run-syncdb", "-v0"], env=env, check=True)
        data_file = workdir / "data.json"
        subprocess.run([sys.executable, __file__, "--setup-into", str(data_file)], env=env, check=True)
        data = json.loads(data_file.read_text())
        port = free_port()
        server = _start_server(env, port, args.threads, args.server_cpu)
        cc_auth = basic(*data["cc"])
        scenarios = [
            ("client_credentials grant", "/oidc/token", "grant_type=client_credentials&scope=registry%3Aread"),
            ("token introspection", "/oidc/introspect", urlencode({"token": data["token"]})),
        ]
        # A failing request fails the benchmark instead of measuring error answers.
        for _label, path, body in scenarios:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            probe.request(
                "POST",
                path,
                body=body,
                headers={"Authorization": cc_auth, "Content-Type": "application/x-www-form-urlencoded"},
            )
            reply = probe.getresponse()
            answer = reply.read()
            if reply.status != 200 or (path.endswith("introspect") and b'"active": true' not in answer):
                raise RuntimeError(f"probe of {path} failed: {reply.status} {answer[:300]!r}")
        for label, path, body in scenarios:
            wrk_post(port, path, body, cc_auth, args.clients, args.warmup, workdir, args.load_cpu)
            results[label] = wrk_post(port, path, body, cc_auth, args.clients, args.seconds, workdir, args.load_cpu)
        if args.load_cpu and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {int(args.load_cpu)})
        code_flow_load(port, data, args.flow_clients, args.warmup)
        results["authorization-code round trip"] = code_flow_load(port, data, args.flow_clients, args.seconds)
    finally:
        stop_process(server)
        if pg_name:
            import psycopg

            with psycopg.connect(maintenance, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import table

    print(
        f"\nOIDC provider on one core (Granian, 1 worker × {args.threads} threads pinned to CPU {args.server_cpu}; "
        f"load generators on CPU {args.load_cpu}); {database}; {args.seconds:.0f} s per scenario"
    )
    print(f"load before the run: {load}")
    rows = [[label, r["rps"], r["p50"], r["p99"], r["max"], r["errors"]] for label, r in results.items()]
    print(table(["scenario (per core)", "per s", "p50 ms", "p99 ms", "max ms", "errors"], rows))
    cc = results["client_credentials grant"]["rps"]
    print(
        f"client_credentials grants per core vs Keycloak's published 120/s per vCPU: {cc / KEYCLOAK_CC_PER_VCPU:.1f}×"
    )
    return 0 if cc >= KEYCLOAK_CC_PER_VCPU else 1


if __name__ == "__main__":
    sys.exit(main())
