"""Import of a 1,000,000-row person CSV into a registry, with full validation (target: < 180 s on SQLite).

Generates a person CSV (valid resident ID numbers with check digits, names, sex, birth date,
ethnicity, mobile phone, address, division code, status, relation — 10 columns, Chinese headers
matched to the registry's labels automatically) in a temporary directory, creates a fresh database
— SQLite in that directory, or with ``--database-url`` a new PostgreSQL database created and
dropped on that server — with tables built from the models, a population-like registry and its
source department (公安), and times ``dgov.registry.io.import_file`` end to end: reading and
decoding the file, cleaning every row (ID checksums, dates, enums, phones, division codes),
duplicate checks, blind indexes, SM4-GCM sealing of personal fields and the inserts, in one
transaction. The file is generated before the clock starts.

Run: ``.venv/bin/python bench/bench_registry_import.py [--rows 1000000] [--database-url postgres://…]
[--profile]`` (``--profile`` prints the top cProfile entries of the import).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import common  # noqa: F401 - puts src/ on sys.path

LIMIT_SECONDS = 180.0
TARGET_ROWS = 1_000_000

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍建国建华志强海燕红梅立新晓东子涵浩然欣怡梓萱"
ETHNICITIES = ("汉族",) * 18 + ("回族", "满族")
ROADS = ("泉城路", "经十路", "解放路", "和平路", "人民路", "建设路", "文化路", "胜利街", "幸福街", "长江路")
HEADER = (
    "公民身份号码", "姓名", "性别", "出生日期", "民族", "联系电话", "户籍地址", "户籍地区划", "人员状态", "与户主关系"
)
RELATIONS = ("head", "spouse", "child", "child", "parent", "other")

FIELDS = [
    {"name": "id_number", "label": "公民身份号码", "label_en": "Resident ID number", "type": "resident_id",
     "sensitivity": "personal", "authority": "GA"},
    {"name": "name", "label": "姓名", "label_en": "Name", "type": "string", "required": True, "max_length": 50,
     "sensitivity": "internal", "authority": "GA", "mask": "name"},
    {"name": "sex", "label": "性别", "label_en": "Sex", "type": "enum", "required": True, "choices": ["1", "2"],
     "authority": "GA"},
    {"name": "birth_date", "label": "出生日期", "label_en": "Date of birth", "type": "date", "required": True,
     "sensitivity": "internal", "authority": "GA"},
    {"name": "ethnicity", "label": "民族", "label_en": "Ethnicity", "type": "string", "max_length": 20,
     "sensitivity": "internal", "authority": "GA"},
    {"name": "phone", "label": "联系电话", "label_en": "Phone", "type": "phone", "sensitivity": "personal",
     "authority": "GA", "lookup": True},
    {"name": "address", "label": "户籍地址", "label_en": "Registered address", "type": "string", "max_length": 200,
     "sensitivity": "personal", "authority": "GA", "mask": "address"},
    {"name": "division_code", "label": "户籍地区划", "label_en": "Division of registration", "type": "division_code",
     "required": True, "authority": "GA"},
    {"name": "status", "label": "人员状态", "label_en": "Status", "type": "enum", "required": True,
     "choices": ["normal", "deceased", "migrated"], "authority": "GA|WJ"},
    {"name": "relation", "label": "与户主关系", "label_en": "Relation to head of household", "type": "enum",
     "choices": ["head", "spouse", "child", "parent", "other"], "authority": "GA"},
]


def counties(province: str = "37") -> list[tuple[str, str]]:
    """Current county-level codes of the province with their full names (from GB/T 2260 in python-stdnum)."""
    from dgov.kernel.validators import loc_entries

    entries = loc_entries()
    out = []
    for code, entry in sorted(entries.items()):
        if not code.startswith(province) or code.endswith("00") or entry.current_name is None:
            continue
        city = entries.get(code[:4] + "00")
        prov = entries.get(code[:2] + "0000")
        if city is None or city.current_name is None or entry.current_name == "市辖区":
            continue
        out.append((code, f"{prov.current_name}{city.current_name}{entry.current_name}"))
    return out


def generate(path: Path, rows: int) -> None:
    """Write ``rows`` valid, unique person rows (UTF-8) to ``path``."""
    from dgov.kernel.validators import make_resident_id

    places = counties()
    regions = len(places) - (len(places) % 2)  # an even count keeps sex (seq parity) a function of the row
    days = 80 * 365
    base = dt.date(1940, 1, 1)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            r = i % regions
            q = i // regions
            born = base + dt.timedelta(days=q % days)
            seq = (q // days) * 2 + (i & 1)
            code, place = places[r]
            number = make_resident_id(code, born, seq)
            writer.writerow(
                (
                    number,
                    SURNAMES[i % len(SURNAMES)] + GIVEN[(i * 7) % len(GIVEN)] + ("" if i % 3 else GIVEN[i % 29]),
                    "1" if seq % 2 else "2",
                    born.isoformat(),
                    ETHNICITIES[i % len(ETHNICITIES)],
                    f"1{3 + i % 7}{(i * 7919) % 1_000_000_000:09d}",
                    f"{place}{ROADS[i % len(ROADS)]}{i % 300 + 1}号",
                    f"{code}{1 + i % 20:03d}{1 + i % 30:03d}",
                    "normal" if i % 50 else "deceased",
                    RELATIONS[i % len(RELATIONS)],
                )
            )


def setup_database(workdir: str, database_url: str):
    """Point Django at a fresh database, build the tables from the models; returns a cleanup callable."""
    os.environ["DGOV_DATA_DIR"] = workdir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dgov.settings")
    dropper = None
    if database_url:
        import psycopg

        parts = urlsplit(database_url)
        maintenance = urlunsplit(parts._replace(path="/postgres"))
        name = f"dgov_bench_import_{os.getpid()}"
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))

        def dropper():
            from django.db import connections

            connections.close_all()
            with psycopg.connect(maintenance, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    else:
        os.environ.pop("DATABASE_URL", None)
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()

    class NoMigrations(dict):
        """Every app "has no migrations": tables come straight from the models (like pytest --no-migrations)."""

        def __contains__(self, item):
            return True

        def __getitem__(self, item):
            return None

    settings.MIGRATION_MODULES = NoMigrations()
    call_command("migrate", run_syncdb=True, verbosity=0)
    return dropper


def create_registry():
    """The province, its public security department and a population-like person registry."""
    from dgov.kernel.models import Division, Organization
    from dgov.kernel.validators import make_uscc
    from dgov.registry import services

    province = Division.objects.create(code="370000", name="山东省", full_name="山东省", level=Division.Level.PROVINCE)
    police = Organization.objects.create(
        name="山东省公安厅",
        code="370000-GA",
        uscc=make_uscc("1", "1", "370000", serial=1),
        level=Organization.Level.PROVINCE,
        division=province,
        kind="GA",
    )
    registry = services.create_registry(
        code="bench.person",
        name="人口基本信息（基准测试）",
        owner=police,
        library_code="population",
        identifier_field="id_number",
        scope_field="division_code",
        fields=FIELDS,
        actor="system:bench",
    )
    return registry, police


def main(argv: list[str] | None = None) -> int:
    """Generate, import, report; exit 1 when 1M rows would take longer than the target on SQLite."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=TARGET_ROWS)
    parser.add_argument("--database-url", default="", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--profile", action="store_true", help="print the top cProfile entries of the import")
    args = parser.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix="dgov-bench-import-")
    dropper = None
    try:
        path = Path(workdir) / "persons.csv"
        start = time.perf_counter()
        dropper = setup_database(workdir, args.database_url)
        generate(path, args.rows)
        print(
            f"generated {args.rows:,} rows ({path.stat().st_size / 1e6:,.0f} MB) "
            f"in {time.perf_counter() - start:.1f} s"
        )
        registry, police = create_registry()

        from dgov.registry import io as registry_io
        from dgov.registry.models import Record, RecordKey

        def run():
            return registry_io.import_file(registry, path, mapping=None, actor="system:bench", source=police)

        before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            report = profiler.runcall(run)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        else:
            report = run()
        after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = [a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before, strict=True)]
        if not report.ok:
            print(report.to_text(limit=20))
            return 1
        records, keys = Record.objects.count(), RecordKey.objects.count()
    finally:
        if dropper:
            dropper()
        shutil.rmtree(workdir, ignore_errors=True)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"registry import, {report.imported:,} rows on {backend}: {report.elapsed:.1f} s "
        f"({report.rows_per_second:,.0f} rows/s; {records:,} records, {keys:,} keys); "
        f"CPU: writer {cpu[0]:.1f} s, cleaning worker {cpu[1]:.1f} s"
    )
    scaled = report.elapsed * TARGET_ROWS / max(args.rows, 1)
    if not args.database_url and not args.profile and args.rows >= 100_000 and scaled > LIMIT_SECONDS:
        print(f"FAIL: {scaled:.0f} s per 1M rows, above the {LIMIT_SECONDS:.0f} s target")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
