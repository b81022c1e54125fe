"""``audit.verify()`` over a large audit chain: records per second and total seconds (target: 1M in < 30 s).

The chain is generated straight into a fresh database — rows with realistic field sizes and
correctly chained SM3 hashes, plus an SM2-signed checkpoint every ``--checkpoint-every``
records in the table and the checkpoint file — by bulk inserts (COPY on PostgreSQL), not by a
million ``record()`` calls. Only ``verify()`` is timed; it reads every row, recomputes every hash
and checks every checkpoint signature, exactly as ``dgov audit verify`` does.

Run: ``.venv/bin/python bench/bench_audit_verify.py [--n 1000000]`` for SQLite in a temporary
directory, or add ``--database-url postgres://postgres@127.0.0.1:5432/postgres`` to run on a new
database ``dgov_bench_audit_<pid>`` created on that server (and dropped afterwards).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import common  # noqa: F401  (puts src/ on sys.path)

LIMIT_SECONDS = 30.0
ACTIONS = [
    ("identity.user.login", "identity.user"),
    ("kernel.organization.update", "kernel.organization"),
    ("registry.person.read", "registry.record"),
    ("services.application.submit", "services.application"),
    ("services.application.accept", "services.application"),
    ("exchange.grant.approve", "exchange.grant"),
    ("licenses.licence.issue", "licenses.licence"),
    ("hotline.ticket.dispatch", "hotline.ticket"),
]
LABELS = ["省公安厅", "济南市市场监督管理局", "历下区行政审批服务局", "山东省大数据局", "张三", "执照申请"]
STATUS_CHANGE = ["submitted", "accepted"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "dgov-worker/1.0",
]


def _fresh_postgres(url: str) -> tuple[str, str, str]:
    """Create an empty database next to ``url``'s; return (its URL, its name, the maintenance URL)."""
    import psycopg

    parts = urlsplit(url)
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    name = f"dgov_bench_audit_{os.getpid()}"
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}")), name, maintenance


def _drop_postgres(name: str, maintenance: str) -> None:
    """Drop the benchmark database."""
    import psycopg

    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _create_tables() -> None:
    """Migrate, then create the tables this benchmark needs that migrations did not (none exist yet)."""
    from django.core.management import call_command
    from django.db import connection

    from dgov.kernel.models import AuditCheckpoint, AuditHead, AuditRecord, KeyRecord

    try:
        call_command("migrate", run_syncdb=True, verbosity=0)
    except ValueError as exc:  # an app's migrations are not generated yet: fall back to the models
        print(f"  migrate skipped ({exc}); creating the audit tables from the models", file=sys.stderr)
    existing = set(connection.introspection.table_names())
    with connection.schema_editor() as editor:
        for model in (AuditRecord, AuditHead, AuditCheckpoint, KeyRecord):
            if model._meta.db_table not in existing:
                editor.create_model(model)


def generate(n: int, every: int) -> float:
    """Write ``n`` chained records and their signed checkpoints; return the seconds it took."""
    import json

    from django.conf import settings
    from django.db import connection, transaction

    from dgov.kernel.models import AuditCheckpoint, AuditHead, AuditRecord
    from dgov.kernel.services import audit, keys

    started = time.perf_counter()
    keys.signing_key(audit.CHECKPOINT_PURPOSE)  # created (and audited) outside the timed part
    with connection.cursor() as cursor:  # key creation wrote record 1: start from an empty log
        cursor.execute(f"DELETE FROM {AuditRecord._meta.db_table}")  # noqa: S608
        cursor.execute(f"DELETE FROM {AuditHead._meta.db_table}")  # noqa: S608
    columns = ["seq", *audit.HASHED_FIELDS, "hash"]
    table = AuditRecord._meta.db_table
    base = datetime(2025, 1, 1, tzinfo=UTC)
    rng = secrets.SystemRandom()
    prev = audit.GENESIS_HASH
    checkpoints, lines = [], []
    batch: list[tuple] = []
    postgres = connection.vendor == "postgresql"

    def flush(raw_cursor) -> None:
        if postgres:
            with raw_cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
        else:
            raw_cursor.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",  # noqa: S608
                batch,
            )
        batch.clear()

    with transaction.atomic():
        raw_cursor = connection.connection.cursor() if postgres else connection.cursor()
        for seq in range(1, n + 1):
            # Whole seconds now and then, so the "no fraction" text form of SQLite is exercised too.
            when = base + timedelta(microseconds=seq * 250_000 if seq % 97 == 0 else seq * 250_013)
            action, target_type = ACTIONS[seq % len(ACTIONS)]
            user = rng.randrange(1, 50_000)
            values = {
                "occurred_at": audit.format_timestamp(when),
                "actor_kind": "user",
                "actor_id": str(user),
                "actor_label": f"user{user} {LABELS[user % len(LABELS)]}",
                "action": action,
                "target_type": target_type,
                "target_id": str(rng.randrange(1, 10_000_000)),
                "target_label": LABELS[seq % len(LABELS)],
                "outcome": "success" if seq % 50 else "denied",
                "detail_json": audit.canonical_json({"changes": {"status": STATUS_CHANGE}, "n": seq}),
                "ip": f"10.{seq % 256}.{(seq >> 8) % 256}.{rng.randrange(1, 255)}",
                "request_id": secrets.token_hex(16),
                "user_agent": AGENTS[seq % len(AGENTS)],
                "prev_hash": prev,
            }
            digest = audit.record_hash(values)
            row = dict(values, occurred_at=connection.ops.adapt_datetimefield_value(when))
            batch.append((seq, *(row[name] for name in audit.HASHED_FIELDS), digest))
            prev = digest
            if every and seq % every == 0:
                created = base + timedelta(seconds=seq)
                created_text = audit.format_timestamp(created)
                payload = audit.checkpoint_payload(seq, digest, created_text)
                kid, signature = keys.sign(audit.CHECKPOINT_PURPOSE, payload)
                fields = {"seq": seq, "hash": digest, "kid": kid, "signature": signature.hex()}
                checkpoints.append(AuditCheckpoint(created_at=created, **fields))
                lines.append(json.dumps({**fields, "created_at": created_text}, sort_keys=True))
            if len(batch) >= 20_000:
                flush(raw_cursor)
                if seq % 200_000 == 0:
                    print(f"  generated {seq:,} records", file=sys.stderr)
        if batch:
            flush(raw_cursor)
        AuditCheckpoint.objects.bulk_create(checkpoints, batch_size=500)
        AuditHead.objects.update_or_create(pk=1, defaults={"seq": n, "hash": prev})
    path = settings.AUDIT_CHECKPOINT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Generate the chain, time verify(), print the figures; exit 0 when SQLite-style bound holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="records to generate (default 1,000,000)")
    parser.add_argument("--checkpoint-every", type=int, default=1000, help="records per signed checkpoint")
    parser.add_argument("--database-url", default="", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--repeat", type=int, default=1, help="verify() runs; the best is reported")
    args = parser.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix="dgov-bench-audit-")
    pg_name = maintenance = None
    if args.database_url:
        url, pg_name, maintenance = _fresh_postgres(args.database_url)
    else:
        url = f"sqlite:///{workdir}/bench.sqlite3"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="dgov.settings",
        DGOV_DATA_DIR=workdir,
        DATABASE_URL=url,
        DGOV_AUDIT_CHECKPOINT_EVERY=str(args.checkpoint_every),
        DGOV_LOG_LEVEL="WARNING",
    )
    os.environ.pop("DGOV_AUDIT_CHECKPOINT_FILE", None)
    try:
        import django

        django.setup()
        from django.db import connection

        from dgov.kernel.services import audit

        _create_tables()
        print(f"generating {args.n:,} audit records on {connection.vendor} …", file=sys.stderr)
        made = generate(args.n, args.checkpoint_every)
        best = None
        for _ in range(max(1, args.repeat)):
            report = audit.verify()
            if not report.ok:
                print(f"verify found a problem in a generated chain: {report.first_problem}", file=sys.stderr)
                return 1
            best = report if best is None or report.elapsed < best.elapsed else best
        size = ""
        if connection.vendor == "sqlite":
            size = f", database {os.path.getsize(f'{workdir}/bench.sqlite3') / 2**20:,.0f} MiB"
        print(f"database            {connection.vendor}{size}")
        print(f"records             {best.records_checked:,}")
        print(f"checkpoints         {best.checkpoints_checked:,} signatures verified")
        print(f"generation          {made:.1f} s")
        print(f"verify              {best.elapsed:.2f} s")
        print(f"verify rate         {best.records_checked / best.elapsed:,.0f} records/s")
        within = best.elapsed < LIMIT_SECONDS * max(best.records_checked, 1) / 1_000_000
        verdict = "met" if within else "MISSED"
        print(f"target              < {LIMIT_SECONDS:.0f} s per 1,000,000 records: {verdict}")
        return 0 if within else 1
    finally:
        from django.db import connections

        connections.close_all()
        if pg_name:
            _drop_postgres(pg_name, maintenance)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
