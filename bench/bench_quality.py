"""Data quality: the same 12 rules on the same 1,000,000-row person table in dgov, Great Expectations, Soda Core
and one hand-written DuckDB query (issue 6).

Targets: dgov at least 10× faster than Great Expectations on pandas, at least 2× faster than Soda Core, and
within 2× of the hand-written query — with scores and failing-row samples included; rows/s reported.

What runs, in one process tree and one run (side by side, interleaved, ``--repeats`` times; medians):

* **data** — a generated person table (``--rows``, default 1,000,000) with realistic defects: wrong ID check
  characters, birth dates and sex codes that disagree with the ID number, ID numbers from other provinces,
  missing names/IDs/phones, names too short or too long, abolished or malformed division codes, duplicate
  registrations of one ID number, impossible and out-of-range birth dates, phone numbers in bad formats and
  stale verification dates. It is loaded as a dgov registry (ID number, phone and address sealed with SM4-GCM,
  blind indexes) into a fresh database — PostgreSQL by default (a new database on ``--database-url``, dropped
  afterwards), SQLite with ``--sqlite`` — with ``registry.services.bulk_create_records(validate=False)``, the
  bulk loader the registry API benchmark uses (the registry's own validation would refuse the defects). The
  same rows in plaintext are written to a Parquet file, all columns text (as the registry stores them).
* **the 12 rules** — dgov's built-in types across five GB/T 36344 dimensions (the population rules shipped in
  ``rules-base.yaml`` plus a per-row freshness rule): ID checksum, duplicate IDs, name required, name length,
  sex code, sex vs ID, birth date vs ID, birth date range, division code in force, division in the ID's
  province, phone format, verification within three years.
* **dgov** — the rules loaded with ``quality.services.load_rules`` and a run executed with
  ``services.execute_run`` end to end: records read from the registry's database, personal values decrypted,
  loaded into DuckDB, the one-query evaluation, masking of samples, results, scores and the audit record saved.
  Its stages are timed through the run's progress callback.
* **dgov engine** — :func:`dgov.quality.engine.evaluate` alone, the 12 compiled rules on a DuckDB table loaded
  from the plaintext Parquet file: the same input as the hand-written query.
* **hand-written DuckDB** — one SQL query computing the 12 failure counts and the first failing keys, then the
  sample rows (``bench/peers/quality_peers.py duckdb``), in dgov's own DuckDB version.
* **Soda Core** (SodaCL, 3.x) on DuckDB — the table loaded from the Parquet file into an in-memory DuckDB
  database; built-in ``missing_count``/``invalid_count`` checks where SodaCL has them, ``failed rows`` checks
  with SQL conditions for the rest; failed-row samples collected by a sampler.
* **Great Expectations** (GX Core 1.x) on pandas — the Parquet file read into a DataFrame; built-in
  expectations where GX has them, custom map expectations (vectorized pandas/numpy) for the identifier rules;
  result format SUMMARY with 20 unexpected rows (their ``person_no``) per expectation.

The peers run in subprocesses of a virtualenv the benchmark creates on first use
(``bench/.venv-quality-peers``, from ``bench/peers/quality-requirements.txt``); they are no dependency of dgov.
Each prints its timings, counts and samples as JSON. Every tool must report the same number of failing rows
per rule as dgov, keep min(failing, 20) sample rows, and every sampled row must fail its rule by the
hand-written SQL (all asserted); the engine's score must equal the run's.

Two comparisons are reported. **Checking the same table** (the targets, asserted): dgov's engine with scores
and masked samples against each peer's checking of the table it was given, loading excluded for all.
**End to end**: dgov's ``execute_run`` from the registry — reading PostgreSQL, decrypting one SM4-GCM sealed
value per record, loading DuckDB, checking, storing — against each peer's reading of the plaintext Parquet
file plus checking; reported, not asserted, as the peers skip the reading and decryption dgov must do.

Run: ``.venv/bin/python bench/bench_quality.py [--rows 1000000] [--repeats 5] [--sqlite |
--database-url postgres://postgres@127.0.0.1:5432/postgres] [--tools dgov,engine,duckdb,soda,gx]
[--keep | --reuse DIR] [--profile]``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from common import table

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
PEERS_VENV = HERE / ".venv-quality-peers"
PEERS_REQUIREMENTS = HERE / "peers" / "quality-requirements.txt"
PEERS_SCRIPT = HERE / "peers" / "quality_peers.py"
TARGET_ROWS = 1_000_000
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres"
REGISTRY_CODE = "bench.person"
SEED = 20261130
FRESH_DAYS = 1095  # verification older than three years is stale
TARGETS = {"gx": 10.0, "soda": 2.0}  # dgov at least this many times faster
HANDWRITTEN_LIMIT = 2.0  # dgov's evaluation within this factor of the hand-written query

COLUMNS = (
    "person_no",
    "id_number",
    "name",
    "sex",
    "birth_date",
    "ethnicity",
    "phone",
    "address",
    "division_code",
    "status",
    "verified_at",
)
FIELDS = [
    {
        "name": "person_no",
        "label": "人员编号",
        "label_en": "Person number",
        "type": "string",
        "max_length": 20,
        "authority": "GA",
    },
    {
        "name": "id_number",
        "label": "公民身份号码",
        "label_en": "Resident ID number",
        "type": "resident_id",
        "sensitivity": "personal",
        "lookup": True,
        "authority": "GA",
    },
    {
        "name": "name",
        "label": "姓名",
        "label_en": "Name",
        "type": "string",
        "max_length": 50,
        "sensitivity": "internal",
        "authority": "GA",
        "mask": "name",
    },
    {"name": "sex", "label": "性别", "label_en": "Sex", "type": "enum", "choices": ["1", "2"], "authority": "GA"},
    {"name": "birth_date", "label": "出生日期", "label_en": "Date of birth", "type": "date", "authority": "GA"},
    {
        "name": "ethnicity",
        "label": "民族",
        "label_en": "Ethnicity",
        "type": "string",
        "max_length": 20,
        "authority": "GA",
    },
    {
        "name": "phone",
        "label": "联系电话",
        "label_en": "Phone",
        "type": "phone",
        "sensitivity": "personal",
        "lookup": True,
        "authority": "GA",
    },
    {
        "name": "address",
        "label": "户籍地址",
        "label_en": "Registered address",
        "type": "string",
        "max_length": 200,
        "sensitivity": "personal",
        "authority": "GA",
        "mask": "address",
    },
    {
        "name": "division_code",
        "label": "户籍地区划",
        "label_en": "Division of registration",
        "type": "division_code",
        "authority": "GA",
    },
    {
        "name": "status",
        "label": "人员状态",
        "label_en": "Status",
        "type": "enum",
        "choices": ["normal", "deceased", "migrated"],
        "authority": "GA",
    },
    {"name": "verified_at", "label": "核验日期", "label_en": "Last verified", "type": "date", "authority": "GA"},
]
PHONE_PATTERN = "1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8}(-[0-9]{1,6})?"
# The 12 rules (short code → rule as data); dgov's codes are "bench.person.<short code>".
RULES = [
    ("id_number.checksum", "公民身份号码符合 GB 11643", "id_number", ["id_number"], {}),
    ("id_number.unique", "公民身份号码不重复", "unique", ["id_number"], {}),
    ("name.required", "姓名不为空", "not_null", ["name"], {}),
    ("name.length", "姓名长度 2–50 字", "length", ["name"], {"min": 2, "max": 50}),
    ("sex.code", "性别代码有效", "in_set", ["sex"], {"values": ["1", "2"]}),
    ("sex.id_number", "性别与公民身份号码一致", "id_sex", ["id_number", "sex"], {"male": ["1"], "female": ["2"]}),
    ("birth_date.id_number", "出生日期与公民身份号码一致", "id_birth_date", ["id_number", "birth_date"], {}),
    ("birth_date.range", "出生日期在 1900 年至今之间", "range", ["birth_date"], {"min": "1900-01-01", "max": "today"}),
    ("division.valid", "户籍地行政区划代码有效", "division_code", ["division_code"], {}),
    (
        "division.id_region",
        "户籍地与身份证地址码同省",
        "id_region",
        ["id_number", "division_code"],
        {"level": "province"},
    ),
    ("phone.format", "联系电话格式正确", "pattern", ["phone"], {"pattern": PHONE_PATTERN}),
    ("verified_at.fresh", "三年内核验过", "freshness", ["verified_at"], {"max_age_days": FRESH_DAYS, "per_row": True}),
]
TOOL_NAMES = {
    "dgov": "dgov execute_run (registry → DuckDB → results)",
    "engine": "dgov engine.evaluate (same table)",
    "duckdb": "hand-written DuckDB query",
    "soda": "Soda Core (SodaCL on DuckDB)",
    "gx": "Great Expectations (pandas)",
}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚华玉萍建国志海燕红梅立新晓东子涵浩然欣怡梓萱"
ETHNICITIES = ("汉族",) * 18 + ("回族", "满族")
ROADS = ("泉城路", "经十路", "解放路", "和平路", "人民路", "建设路", "文化路", "胜利街", "幸福街", "长江路")
STATUSES = ("normal",) * 47 + ("deceased", "deceased", "migrated")
CHECK_CHARS = "0123456789X"


# --- Data --------------------------------------------------------------------------------------------------


def code_lists() -> dict:
    """Shandong's current counties (with names), abolished Shandong codes, and other provinces' current counties."""
    from dgov.kernel.validators import loc_entries

    entries = loc_entries()
    current, abolished, others = [], [], []
    for code, entry in sorted(entries.items()):
        if code.endswith("00"):
            continue
        if entry.current_name is None:
            if code.startswith("37"):
                abolished.append(code)
            continue
        city, province = entries.get(code[:4] + "00"), entries.get(code[:2] + "0000")
        if code.startswith("37"):
            if city is not None and city.current_name and entry.current_name != "市辖区":
                current.append((code, f"{province.current_name}{city.current_name}{entry.current_name}"))
        elif code[:2] in ("11", "32", "41", "44", "51"):
            others.append(code)
    return {"current": current, "abolished": abolished, "others": others}


def generate(csv_path: Path, rows: int, today: dt.date):
    """Write ``rows`` person rows (with defects) to ``csv_path`` and yield them as dicts (missing values left out).

    Deterministic (a seeded generator); about 16 % of the rows carry at least one defect.
    """
    from dgov.kernel.validators import make_resident_id

    lists = code_lists()
    places, abolished, others = lists["current"], lists["abolished"], lists["others"]
    rng = random.Random(SEED)
    base = dt.date(1940, 1, 1)
    days = 80 * 365
    regions = len(places) - (len(places) % 2)
    recent: deque = deque(maxlen=5000)
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i in range(rows):
            r, q = i % regions, i // regions
            born = base + dt.timedelta(days=q % days)
            seq = ((q // days) * 2 + (i & 1)) % 1000
            code, place = places[r]
            id_region = others[rng.randrange(len(others))] if rng.random() < 0.02 else code
            number = make_resident_id(id_region, born, seq)
            sex = "1" if seq % 2 else "2"
            birth = born.isoformat()
            name = SURNAMES[rng.randrange(len(SURNAMES))] + GIVEN[rng.randrange(len(GIVEN))]
            if rng.random() < 0.4:
                name += GIVEN[rng.randrange(len(GIVEN))]
            if recent and rng.random() < 0.004:  # the same person registered twice
                number, sex, birth, name = recent[rng.randrange(len(recent))]
            else:
                recent.append((number, sex, birth, name))
            if rng.random() < 0.008:
                number = number[:17] + rng.choice(CHECK_CHARS.replace(number[17], ""))
            if rng.random() < 0.006:
                birth = (born + dt.timedelta(days=rng.randint(1, 400))).isoformat()
            if rng.random() < 0.002:
                birth = rng.choice(
                    (
                        f"{rng.randint(1850, 1899)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                        f"{rng.randint(2090, 2099)}-1{rng.randint(0, 2)}-2{rng.randint(0, 8)}",
                        f"{born.year}-02-30",
                    )
                )
            if rng.random() < 0.006:
                sex = "2" if sex == "1" else "1"
            if rng.random() < 0.002:
                sex = rng.choice(("0", "9", "男", "女", "M"))
            if rng.random() < 0.002:
                name = name[0]
            elif rng.random() < 0.001:
                name = name * 9 + "（户籍迁入时登记的曾用名及备注信息）" * 2
            division = f"{code}{1 + rng.randrange(20):03d}{1 + rng.randrange(30):03d}"
            if rng.random() < 0.006:
                division = rng.choice(
                    (
                        f"{rng.choice(abolished)}001001",
                        f"{code}000{1 + rng.randrange(30):03d}",
                        code[:4],
                        f"{code}0{rng.randrange(10)}",
                        "379901001001",
                    )
                )
            phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
            u = rng.random()
            if u < 0.012:
                phone = rng.choice(
                    (
                        f"8{rng.randrange(10**7):07d}",
                        f"+86{phone}",
                        f"{phone[:3]} {phone[3:7]} {phone[7:]}",
                        phone[:10],
                        f"12{phone[2:]}",
                    )
                )
            elif u < 0.022:
                phone = f"0531-8{rng.randrange(10**7):07d}"  # a landline: valid
            if rng.random() < 0.05:
                verified = today - dt.timedelta(days=rng.randint(FRESH_DAYS + 100, 3650))
            else:
                verified = today - dt.timedelta(days=rng.randint(0, FRESH_DAYS - 100))
            row = {
                "person_no": f"P{i + 1:09d}",
                "id_number": number,
                "name": name,
                "sex": sex,
                "birth_date": birth,
                "ethnicity": ETHNICITIES[rng.randrange(len(ETHNICITIES))],
                "phone": phone,
                "address": f"{place}{ROADS[rng.randrange(len(ROADS))]}{rng.randint(1, 300)}号",
                "division_code": division,
                "status": STATUSES[rng.randrange(len(STATUSES))],
                "verified_at": verified.isoformat(),
            }
            for name_, p in (
                ("id_number", 0.002),
                ("name", 0.004),
                ("sex", 0.001),
                ("birth_date", 0.001),
                ("phone", 0.03),
                ("division_code", 0.002),
                ("verified_at", 0.01),
            ):
                if rng.random() < p:
                    del row[name_]
            writer.writerow([row.get(column, "") for column in COLUMNS])
            yield row


def write_parquet(csv_path: Path, parquet_path: Path) -> None:
    """The plaintext CSV as Parquet, every column text (an empty cell is NULL: the data has no blank values)."""
    import duckdb

    con = duckdb.connect()
    types = ", ".join(f"'{c}': 'VARCHAR'" for c in COLUMNS)
    con.execute(
        f"COPY (SELECT * FROM read_csv('{csv_path}', header = true, columns = {{{types}}})) "
        f"TO '{parquet_path}' (FORMAT parquet)"
    )
    con.close()


# --- Database -----------------------------------------------------------------------------------------------


class NoMigrations(dict):
    """Every app "has no migrations": tables come straight from the models (like pytest --no-migrations)."""

    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None


def setup_django(workdir: Path, database_url: str, *, create: bool) -> None:
    """Point Django at the database (created on the server when ``create``) and build the tables from the models."""
    os.environ["DGOV_DATA_DIR"] = str(workdir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dgov.settings")
    if database_url:
        os.environ["DATABASE_URL"] = database_url
        if create:
            import psycopg

            parts = urlsplit(database_url)
            with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{parts.path.lstrip("/")}"')
    else:
        os.environ.pop("DATABASE_URL", None)
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    settings.MIGRATION_MODULES = NoMigrations()
    if create:
        call_command("migrate", run_syncdb=True, verbosity=0)


def drop_database(database_url: str) -> None:
    """Drop the benchmark's PostgreSQL database."""
    import psycopg
    from django.db import connections

    connections.close_all()
    parts = urlsplit(database_url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}"')


def create_registry():
    """The province, its public security department (the source), the data bureau and the person registry."""
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
    Organization.objects.create(
        name="山东省大数据局",
        code="370000-DSJ",
        uscc=make_uscc("1", "1", "370000", serial=2),
        level=Organization.Level.PROVINCE,
        division=province,
        kind="DSJ",
    )
    registry = services.create_registry(
        code=REGISTRY_CODE,
        name="人口综合信息（质量基准测试）",
        owner=police,
        library_code="population",
        identifier_field="person_no",
        scope_field="division_code",
        fields=FIELDS,
        actor="system:bench",
    )
    return registry, police


def load(rows_iter, registry, police, rows: int) -> float:
    """Insert the rows with the registry's bulk loader (50,000 per transaction); returns seconds."""
    from django.db import connection, transaction

    from dgov.registry import services

    start = time.perf_counter()
    done = 0
    chunk: list[dict] = []

    def flush():
        nonlocal done
        with transaction.atomic():
            services.bulk_create_records(registry, chunk, actor="system:bench", source=police, validate=False)
        done += len(chunk)
        chunk.clear()
        with connection.cursor() as cursor:  # fresh statistics (see bench_registry_api.py)
            cursor.execute("ANALYZE")
        rate = done / (time.perf_counter() - start)
        print(f"  loaded {done:,}/{rows:,} records ({rate:,.0f} rows/s)", flush=True)

    for row in rows_iter:
        chunk.append(row)
        if len(chunk) >= 50_000:
            flush()
    if chunk:
        flush()
    return time.perf_counter() - start


def load_rules() -> None:
    """The 12 rules as dgov rule data, loaded through the quality service (all or nothing)."""
    from dgov.quality import services

    data = [
        {
            "code": f"{REGISTRY_CODE}.{code}",
            "registry": REGISTRY_CODE,
            "name": name,
            "type": rule_type,
            "fields": fields,
            "params": params,
        }
        for code, name, rule_type, fields, params in RULES
    ]
    report = services.load_rules(data, actor="system:bench", source="bench_quality")
    if not report.ok:
        raise SystemExit(report.to_text() if hasattr(report, "to_text") else str(report))


# --- Contenders ---------------------------------------------------------------------------------------------


def run_dgov(registry, samples: int, profile: str = "") -> dict:
    """One quality run, end to end (``execute_run``), stages timed through its progress callback."""
    from dgov.quality import services
    from dgov.quality.models import RuleResult

    run = services.start_run(registry, actor="system:bench")
    marks: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        marks.setdefault(f"{stage}:{'end' if done >= total and stage != 'load' else 'start'}", time.perf_counter())

    start = time.perf_counter()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        run = profiler.runcall(services.execute_run, run, actor="system:bench", samples=samples, progress=progress)
        profiler.dump_stats(profile)
    else:
        run = services.execute_run(run, actor="system:bench", samples=samples, progress=progress)
    end = time.perf_counter()
    if run.status != run.Status.SUCCEEDED:
        raise SystemExit(f"dgov run failed: {run.error}")
    results = {r.rule_code.removeprefix(REGISTRY_CODE + "."): r for r in RuleResult.objects.filter(run=run)}
    return {
        "tool": "dgov",
        "rows": run.rows,
        "load_seconds": 0.0,
        "check_seconds": end - start,
        "stages": {
            "read, decrypt, load": marks["evaluate:start"] - start,
            "evaluate": marks["evaluate:end"] - marks["evaluate:start"],
            "mask, score, save": end - marks["evaluate:end"],
        },
        "failed": {code: r.failed for code, r in results.items()},
        "checked": {code: r.checked for code, r in results.items()},
        "samples": {code: [s["uid"] for s in r.samples] for code, r in results.items()},
        "score": float(run.score) if run.score is not None else None,
        "grade": run.grade,
        "dimensions": run.dimension_scores,
    }


def run_engine(parquet: Path, samples: int, now: dt.datetime) -> dict:
    """dgov's engine alone on a DuckDB table loaded from the plaintext Parquet file (the hand-written query's input)."""
    import duckdb

    from dgov.quality import scoring
    from dgov.quality.engine import evaluate
    from dgov.quality.rules import RULE_TYPES, Column, Context, RuleSpec
    from dgov.registry.schema import mask_value, parse_fields

    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"CREATE TABLE persons AS FROM read_parquet('{parquet}')")
    loaded = time.perf_counter()
    definitions = {f.name: f for f in parse_fields(FIELDS, identifier="person_no")}
    columns = {f.name: Column(f.name, f.type, f.is_personal, tuple(f.choices), f.label) for f in definitions.values()}
    ctx = Context(columns=columns, now=now, key="person_no")
    specs = [RuleSpec(code, rule_type, tuple(fields), params) for code, _n, rule_type, fields, params in RULES]
    result = evaluate(con.table("persons"), specs, context=ctx, samples=samples, key="person_no")
    for outcome in result.outcomes.values():  # masked as a run stores them
        for sample in outcome.samples:
            sample["values"] = {
                name: mask_value(definitions[name], value) if definitions[name].is_personal and value else value
                for name, value in sample["values"].items()
            }
    summary = scoring.summarize(
        (RULE_TYPES[spec.type].dimension, 2, result.outcomes[spec.code].checked, result.outcomes[spec.code].failed)
        for spec in specs
    )
    end = time.perf_counter()
    con.close()
    return {
        "tool": "engine",
        "rows": result.rows,
        "load_seconds": loaded - start,
        "check_seconds": end - loaded,
        "failed": {code: o.failed for code, o in result.outcomes.items()},
        "checked": {code: o.checked for code, o in result.outcomes.items()},
        "samples": {code: [s["key"] for s in o.samples] for code, o in result.outcomes.items()},
        "score": float(summary.score) if summary.score is not None else None,
    }


def peers_python() -> Path:
    """The peers' virtualenv interpreter, created from the pinned requirements on first use (or when they change)."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".requirements"
    wanted = PEERS_REQUIREMENTS.read_text()
    if not python.exists() or not stamp.exists() or stamp.read_text() != wanted:
        print(f"creating {PEERS_VENV.relative_to(ROOT)} (Great Expectations, Soda Core) from PyPI …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEERS_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(PEERS_REQUIREMENTS)]
        done = subprocess.run(pip, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"installing the peers failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        stamp.write_text(wanted)
    return python


def run_peer(tool: str, parquet: Path, spec: Path) -> dict:
    """One peer in a subprocess (the hand-written query with dgov's interpreter, others in the peers' venv)."""
    python = sys.executable if tool == "duckdb" else str(peers_python())
    proc = subprocess.run(
        [python, str(PEERS_SCRIPT), tool, "--data", str(parquet), "--spec", str(spec)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{tool} failed ({proc.returncode}):\n{proc.stderr[-4000:]}\n{proc.stdout[-2000:]}")
    return json.loads(lines[-1])


def spec_for(path: Path, now: dt.datetime, samples: int) -> None:
    """The rule parameters every peer needs, written as JSON: dates, code lists, the phone pattern."""
    from dgov.quality.rules import default_current_divisions, default_id_regions

    today = now.date()
    path.write_text(
        json.dumps(
            {
                "rules": [code for code, *_rest in RULES],
                "today": today.isoformat(),
                "fresh_cutoff": (now - dt.timedelta(days=FRESH_DAYS)).date().isoformat(),
                "id_regions": default_id_regions(),
                "current_divisions": default_current_divisions(),
                "phone_pattern": PHONE_PATTERN,
                "samples": samples,
                "key": "person_no",
            }
        )
    )


# --- Main ---------------------------------------------------------------------------------------------------


def check_counts(results: dict[str, list[dict]], samples: int) -> list[str]:
    """Where a tool's failure counts differ from dgov's (or the first tool's), or it kept too few samples."""
    reference_tool = "dgov" if "dgov" in results else next(iter(results))
    reference = results[reference_tool][0]["failed"]
    problems = []
    for tool, runs in results.items():
        for run in runs:
            for code, _n, *_rest in RULES:
                failed = run["failed"].get(code)
                if failed != reference.get(code):
                    problems.append(f"{tool}: {code} failed {failed} ≠ {reference_tool} {reference.get(code)}")
                kept = len(run["samples"].get(code) or [])
                if kept != min(failed or 0, samples):
                    problems.append(f"{tool}: {code} kept {kept} sample rows of {failed} failing")
    return sorted(set(problems))


def main(argv: list[str] | None = None) -> int:
    """Generate and load (or reuse), measure every tool in interleaved rounds, assert equal counts, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=TARGET_ROWS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DGOV_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a PostgreSQL server; a new database is created on it and dropped afterwards",
    )
    parser.add_argument("--sqlite", action="store_true", help="SQLite in the work directory instead of PostgreSQL")
    parser.add_argument("--tools", default="dgov,engine,duckdb,soda,gx")
    parser.add_argument("--keep", action="store_true", help="keep the database and the work directory")
    parser.add_argument("--reuse", default="", help="a work directory kept by --keep (skips generating and loading)")
    parser.add_argument("--profile", default="", help="write a cProfile of the first dgov run to this file")
    args = parser.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(TOOL_NAMES)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")

    if args.reuse:
        workdir = Path(args.reuse).resolve()
        state = json.loads((workdir / "state.json").read_text())
        setup_django(workdir, state["database_url"], create=False)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="dgov-bench-quality-"))
        database_url = ""
        if not args.sqlite:
            parts = urlsplit(args.database_url)
            database_url = urlunsplit(parts._replace(path=f"/dgov_bench_quality_{os.getpid()}"))
        state = {"database_url": database_url, "rows": args.rows}
        setup_django(workdir, database_url, create=True)
    keep = args.keep or bool(args.reuse)
    database_url = state["database_url"]
    csv_path, parquet = workdir / "persons.csv", workdir / "persons.parquet"
    try:
        from dgov.registry.models import Registry

        if not args.reuse:
            registry, police = create_registry()
            today = dt.date.today()
            print(f"generating and loading {args.rows:,} rows into {'PostgreSQL' if database_url else 'SQLite'} …")
            state["load_seconds"] = load(generate(csv_path, args.rows, today), registry, police, args.rows)
            write_parquet(csv_path, parquet)
            csv_path.unlink()
            load_rules()
            (workdir / "state.json").write_text(json.dumps(state))
        registry = Registry.objects.get(code=REGISTRY_CODE)
        rows = state["rows"]
        now = dt.datetime.now(dt.UTC)
        spec = workdir / "spec.json"
        spec_for(spec, now, args.samples)
        if any(t in tools for t in ("soda", "gx")):
            peers_python()
        results: dict[str, list[dict]] = {t: [] for t in tools}
        for repeat in range(args.repeats):
            for tool in tools:
                if tool == "dgov":
                    out = run_dgov(registry, args.samples, args.profile if repeat == 0 else "")
                elif tool == "engine":
                    out = run_engine(parquet, args.samples, now)
                else:
                    out = run_peer(tool, parquet, spec)
                results[tool].append(out)
                print(
                    f"  round {repeat + 1}: {tool:6s} load {out['load_seconds']:7.2f} s, "
                    f"check {out['check_seconds']:7.2f} s"
                    + (
                        f"  ({', '.join(f'{k} {v:.2f} s' for k, v in out['stages'].items())})"
                        if "stages" in out
                        else ""
                    ),
                    flush=True,
                )
        problems = check_counts(results, args.samples) + verify_samples(results, parquet, spec)
    finally:
        if not keep:
            if database_url:
                drop_database(database_url)
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept: --reuse {workdir}" + (f" (database {database_url})" if database_url else ""))
    return report(results, rows, database_url, problems)


def verify_samples(results: dict[str, list[dict]], parquet: Path, spec: Path) -> list[str]:
    """Samples (``person_no``) of every tool but dgov's run that do not fail their rule by the hand-written SQL."""
    import duckdb

    sys.path.insert(0, str(PEERS_SCRIPT.parent))
    import quality_peers

    data = json.loads(spec.read_text())
    conditions = quality_peers.fail_conditions(data)
    con = duckdb.connect()
    quality_peers.load_duckdb(con, str(parquet), data)
    con.execute(f"CREATE TABLE duplicates AS {quality_peers.DUPLICATES_SQL}")
    problems = []
    for tool, runs in results.items():
        if tool == "dgov":  # its samples name record uids; the engine's are the same rows by person_no
            continue
        for code, keys in runs[0]["samples"].items():
            if not keys:
                continue
            passing = con.execute(
                f"SELECT person_no FROM persons WHERE person_no IN (SELECT unnest(?)) "
                f"AND NOT coalesce({conditions[code]}, FALSE)",
                [list(keys)],
            ).fetchall()
            if passing:
                problems.append(f"{tool}: {code} sample rows that do not fail: {[p[0] for p in passing][:5]}")
    con.close()
    return problems


INPUTS = {
    "dgov": "the registry in the database (sealed personal values)",
    "engine": "DuckDB table from the Parquet file",
    "duckdb": "DuckDB table from the Parquet file",
    "soda": "DuckDB table from the Parquet file",
    "gx": "pandas DataFrame from the Parquet file",
}


def report(results: dict[str, list[dict]], rows: int, database_url: str, problems: list[str]) -> int:
    """Print the per-rule counts, the timing table and the ratios; 1 when results differ or a target is missed."""
    rounds = len(next(iter(results.values())))
    print()
    print("failing rows per rule (round 1):")
    print(
        table(
            ["rule", *results],
            [[code, *(results[t][0]["failed"].get(code, "—") for t in results)] for code, *_rest in RULES],
        )
    )
    if "dgov" in results:
        run = results["dgov"][0]
        print(f"dgov run: score {run['score']}, grade {run['grade']}, dimensions {run['dimensions']}")
    if "engine" in results and "dgov" in results and results["engine"][0]["score"] != results["dgov"][0]["score"]:
        problems.append(f"engine score {results['engine'][0]['score']} ≠ run score {results['dgov'][0]['score']}")
    check = {t: statistics.median(r["check_seconds"] for r in runs) for t, runs in results.items()}
    load = {t: statistics.median(r["load_seconds"] for r in runs) for t, runs in results.items()}
    total = {t: statistics.median(r["load_seconds"] + r["check_seconds"] for r in runs) for t, runs in results.items()}
    print()
    backend = "PostgreSQL" if database_url else "SQLite"
    print(f"{rows:,} rows, {len(RULES)} rules, median of {rounds} round(s); dgov's run reads {backend}:")
    lines = [
        [TOOL_NAMES[t], INPUTS[t], round(load[t], 2), round(check[t], 2), round(total[t], 2), round(rows / check[t])]
        for t in results
    ]
    print(table(["tool", "given", "load s", "check s", "load+check s", "rows/s (check)"], lines))
    if "dgov" in results:
        stages = {k: statistics.median(r["stages"][k] for r in results["dgov"]) for k in results["dgov"][0]["stages"]}
        print("dgov run stages: " + "; ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
    missed = []
    if "engine" in results:
        print("checking the same table (dgov: engine.evaluate + scores + masked samples):")
        for tool, target in TARGETS.items():
            if tool in results:
                ratio = check[tool] / check["engine"]
                ok = ratio >= target
                missed += [] if ok else [tool]
                verdict = "ok" if ok else "MISSED"
                print(f"  dgov vs {TOOL_NAMES[tool]}: {ratio:.1f}× faster (target ≥ {target:.0f}×) {verdict}")
        if "duckdb" in results:
            ratio = check["engine"] / check["duckdb"]
            ok = ratio <= HANDWRITTEN_LIMIT
            missed += [] if ok else ["duckdb"]
            verdict = "ok" if ok else "MISSED"
            print(f"  dgov / hand-written query: {ratio:.2f}× (target ≤ {HANDWRITTEN_LIMIT:.0f}×) {verdict}")
    if "dgov" in results:
        print("end to end (dgov: execute_run from the registry; peers: reading the Parquet file + checking):")
        for tool in ("gx", "soda", "duckdb"):
            if tool in results:
                ratio = total[tool] / check["dgov"]
                print(f"  dgov vs {TOOL_NAMES[tool]}: {ratio:.2f}× {'faster' if ratio >= 1 else 'as fast'}")
    if problems:
        print("PROBLEMS:\n  " + "\n  ".join(problems))
        return 1
    if missed and rows < TARGET_ROWS:
        print(f"(the targets are for {TARGET_ROWS:,} rows; with {rows:,} fixed costs weigh more: not judged)")
    elif missed:
        print(f"FAIL: missed against {', '.join(missed)}")
        return 1
    print("every tool found the same failing rows for every rule; samples verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
