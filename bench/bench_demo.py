"""``dgov demo`` on a fresh database: seconds to generate the demo province (target: 100k persons < 120 s).

Runs the real command in a subprocess against a new SQLite database in a temporary directory
(or, with ``--database-url``, a new PostgreSQL database created and dropped on that server), after
``migrate``. The timed part is the command alone, as ``make run`` would run it.

Run: ``.venv/bin/python bench/bench_demo.py [--persons 100000] [--enterprises 10000]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

LIMIT_SECONDS = 120.0
DGOV = str(Path(sys.executable).with_name("dgov"))


def main(argv: list[str] | None = None) -> int:
    """Time the demo command; exit 1 when 100k persons take longer than the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--enterprises", type=int, default=10_000)
    parser.add_argument("--database-url", default="", help="a PostgreSQL server URL (default: SQLite)")
    args = parser.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix="dgov-bench-demo-")
    env = {**os.environ, "DGOV_DATA_DIR": workdir, "DJANGO_SETTINGS_MODULE": "dgov.settings"}
    env.pop("DATABASE_URL", None)
    dropper = None
    if args.database_url:
        import psycopg

        parts = urlsplit(args.database_url)
        maintenance = urlunsplit(parts._replace(path="/postgres"))
        name = f"dgov_bench_demo_{os.getpid()}"
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))

        def dropper():
            with psycopg.connect(maintenance, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')

    try:
        subprocess.run([DGOV, "migrate", "-v0"], env=env, check=True)
        start = time.perf_counter()
        subprocess.run(
            [DGOV, "demo", "--persons", str(args.persons), "--enterprises", str(args.enterprises)],
            env=env,
            check=True,
        )
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if dropper:
            dropper()
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"dgov demo, {args.persons:,} persons + {args.enterprises:,} enterprises on {backend}: "
          f"{seconds:.1f} s ({args.persons / seconds:,.0f} persons/s incl. households, officials, enterprises)")
    if args.persons >= 100_000 and seconds * 100_000 / args.persons > LIMIT_SECONDS:
        print(f"FAIL: above the {LIMIT_SECONDS:.0f} s target for 100k persons")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
