"""Catalogue search latency (p50/p95) with 100,000 published entries (issue 5's figure).

Builds a fresh database — SQLite in a temporary directory, or with ``--database-url`` a new
PostgreSQL database created and dropped on that server — with tables from the models, the standard
classification, ``--departments`` departments and ``--n`` published entries generated from a
Chinese vocabulary of government data (names, summaries, 5–12 information items each). Entries are
bulk-inserted with their published snapshots and the search index is then built by
``dgov.catalog.search.rebuild_index`` (the same documents publication produces), both before the
clock starts. The query mix is timed through ``search.search`` (segmentation, ranking, facet
counts and the page of results — what the API and the page call):

* one-word queries (营业执照, 户籍, 社会保险 …), two-word queries, queries with a facet filter,
  broad queries (信息), queries that match nothing, and browsing without a query.

Run: ``.venv/bin/python bench/bench_catalog_search.py [--n 100000] [--queries 2000]
[--database-url postgres://…]``; a quick smoke: ``--n 2000 --queries 200``. With ``--reuse DIR``
the database is kept (SQLite: in ``DIR``; PostgreSQL: a database named after ``DIR``, dropped by
hand) and a later run with the same ``--n``, ``--departments``, ``--seed`` and server skips the
build; ``--dump FILE`` writes every query's results (ids, scores, total,
facets) as JSON lines, to check that a change keeps results identical.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

import common  # noqa: F401 - puts src/ on sys.path

DOMAINS = (
    "企业",
    "个体工商户",
    "社会组织",
    "人口",
    "户籍",
    "婚姻",
    "出生",
    "死亡",
    "社会保险",
    "医疗保险",
    "住房公积金",
    "不动产",
    "土地",
    "规划",
    "建筑工程",
    "交通运输",
    "道路运输",
    "机动车",
    "驾驶人",
    "学校",
    "学生",
    "教师",
    "医疗机构",
    "药品",
    "食品",
    "特种设备",
    "环境",
    "排污",
    "水质",
    "空气质量",
    "应急",
    "安全生产",
    "消防",
    "税务",
    "发票",
    "财政",
    "非税收入",
    "统计",
    "价格",
    "农业",
    "林业",
    "水利",
    "气象",
    "文化",
    "旅游",
    "体育",
    "民政",
    "残疾人",
    "退役军人",
)
OBJECTS = (
    "营业执照",
    "登记",
    "许可",
    "备案",
    "证书",
    "年报",
    "监测",
    "检验",
    "处罚",
    "补贴",
    "救助",
    "参保",
    "缴费",
    "结算",
    "资质",
    "名录",
    "档案",
    "统计",
    "评价",
    "信用",
)
SUFFIXES = ("信息", "数据", "信息表", "明细", "目录")
ITEMS = (
    ("统一社会信用代码", "C", 18),
    ("名称", "C", 200),
    ("公民身份号码", "C", 18),
    ("姓名", "C", 50),
    ("性别", "C", 1),
    ("出生日期", "D", 10),
    ("联系电话", "C", 11),
    ("地址", "C", 300),
    ("行政区划代码", "C", 6),
    ("登记日期", "D", 10),
    ("有效期至", "D", 10),
    ("证照编号", "C", 32),
    ("发证机关", "C", 100),
    ("状态", "C", 2),
    ("金额", "Y", None),
    ("经营范围", "M", None),
    ("法定代表人", "C", 50),
    ("注册资本", "Y", None),
    ("坐标", "M", None),
    ("备注", "M", None),
)
QUERIES_ONE = (
    "营业执照",
    "户籍",
    "社会保险",
    "不动产",
    "排污许可",
    "驾驶人",
    "公积金",
    "学生",
    "食品",
    "统一社会信用代码",
)
QUERIES_TWO = ("企业 年报", "社会保险 缴费", "机动车 检验", "医疗机构 许可", "学校 名录", "税务 处罚")
QUERIES_NONE = ("航天器发射", "量子通信")


def reuse_name(workdir: str) -> str:
    """The PostgreSQL database kept for ``--reuse DIR``."""
    return "dgov_bench_catalog_" + "".join(c if c.isalnum() else "_" for c in os.path.basename(workdir.rstrip("/")))


def setup_database(workdir: str, database_url: str, *, keep: bool = False):
    """Point Django at a fresh database, build the tables from the models; returns a cleanup callable."""
    os.environ["DGOV_DATA_DIR"] = workdir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dgov.settings")
    dropper = None
    if database_url:
        import psycopg

        parts = urlsplit(database_url)
        maintenance = urlunsplit(parts._replace(path="/postgres"))
        name = reuse_name(workdir) if keep else f"dgov_bench_catalog_{os.getpid()}"
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))

        def dropper():
            if keep:
                return
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
        """Every app "has no migrations": tables come straight from the models."""

        def __contains__(self, item):
            return True

        def __getitem__(self, item):
            return None

    settings.MIGRATION_MODULES = NoMigrations()
    call_command("migrate", run_syncdb=True, verbosity=0)
    return dropper


def load(n: int, departments: int, seed: int) -> None:
    """Bulk-insert the departments and ``n`` published entries with snapshots, then build the index."""
    from django.db import transaction
    from django.utils import timezone

    from dgov.catalog import search, services
    from dgov.catalog.models import InformationItem, InformationResource, ResourceClass, ResourceVersion
    from dgov.kernel.models import Division, Organization
    from dgov.kernel.validators import make_uscc

    rng = random.Random(seed)
    with transaction.atomic():
        services.ensure_standard_classes(actor="system:bench")
        province = Division.objects.create(code="370000", name="山东省", full_name="山东省", level=1)
        orgs = Organization.objects.bulk_create(
            [
                Organization(
                    name=f"山东省{DOMAINS[i % len(DOMAINS)]}管理局{i}",
                    code=f"370000-B{i:03d}",
                    uscc=make_uscc("1", "1", "370000", serial=i + 1),
                    level=1,
                    division=province,
                    kind=f"B{i:03d}",
                )
                for i in range(departments)
            ]
        )
        orgs = list(Organization.objects.order_by("pk"))
    leaves = [c for c in ResourceClass.objects.filter(level__gte=2)]
    paths = {c.pk: services._class_path(c) for c in leaves}
    now = timezone.now()
    kinds = ("unconditional",) * 5 + ("conditional",) * 4 + ("none",)
    formats = [f for f, _label in InformationResource.Format.choices]
    cycles = [c for c, _label in InformationResource.UpdateCycle.choices]
    batch = 2000
    for start in range(0, n, batch):
        with transaction.atomic():
            resources, snaps, item_rows = [], [], []
            for number in range(start, min(n, start + batch)):
                cls = rng.choice(leaves)
                org = rng.choice(orgs)
                name = f"{rng.choice(DOMAINS)}{rng.choice(OBJECTS)}{rng.choice(SUFFIXES)}"
                sharing = rng.choice(kinds)
                summary = (
                    f"{org.name}在履行{rng.choice(DOMAINS)}管理职责中形成的{name}，"
                    f"包括{rng.choice(ITEMS)[0]}、{rng.choice(ITEMS)[0]}等，用于{rng.choice(DOMAINS)}业务协同。"
                )
                code = f"{cls.code.ljust(9, '0')}/{number + 1:06d}"
                items = rng.sample(ITEMS, rng.randint(5, 12))
                resource = InformationResource(
                    code=code,
                    classification=cls,
                    name=name,
                    provider=org,
                    provider_code=org.uscc,
                    summary=summary,
                    format=rng.choice(formats),
                    sharing_type=sharing,
                    sharing_mode="" if sharing == "none" else "api",
                    sharing_conditions="" if sharing == "unconditional" else "依法申请",
                    open_type=rng.choice(("none", "none", "unconditional", "conditional")),
                    update_cycle=rng.choice(cycles),
                    status="published",
                    version=1,
                    published_on=dt.date(2026, 1, 1),
                )
                resources.append(resource)
                snaps.append(
                    {
                        "code": code,
                        "name": name,
                        "summary": summary,
                        "keywords": "",
                        "classification": {
                            "code": cls.code,
                            "name": cls.name,
                            "category": cls.category,
                            "path": [{"code": p.code, "name": p.name, "level": p.level} for p in paths[cls.pk]],
                        },
                        "provider": {"id": org.pk, "code": org.code, "name": org.name, "uscc": org.uscc},
                        "provider_code": org.uscc,
                        "format": resource.format,
                        "format_detail": "",
                        "sharing_type": sharing,
                        "sharing_conditions": resource.sharing_conditions,
                        "sharing_mode": resource.sharing_mode,
                        "open_type": resource.open_type,
                        "open_conditions": "",
                        "update_cycle": resource.update_cycle,
                        "published_on": "2026-01-01",
                        "published_at": now.isoformat(),
                        "version": 1,
                        "related": [],
                        "maintainer": "",
                        "contact": "",
                        "items": [
                            {
                                "code": f"i{k}",
                                "name": label,
                                "data_type": dtype,
                                "length": length,
                                "description": "",
                                "data_element": "",
                                "registry": "",
                                "registry_field": "",
                                "sharing_type": sharing,
                                "is_own": True,
                            }
                            for k, (label, dtype, length) in enumerate(items)
                        ],
                    }
                )
                item_rows.append(items)
            made = InformationResource.objects.bulk_create(resources)
            if any(r.pk is None for r in made):
                ids = dict(
                    InformationResource.objects.filter(code__in=[r.code for r in made]).values_list("code", "pk")
                )
                for r in made:
                    r.pk = ids[r.code]
            versions = ResourceVersion.objects.bulk_create(
                [
                    ResourceVersion(resource=r, number=1, snapshot=s, published_at=now)
                    for r, s in zip(made, snaps, strict=True)
                ]
            )
            if any(v.pk is None for v in versions):
                ids = dict(ResourceVersion.objects.filter(resource__in=made).values_list("resource_id", "pk"))
                for v in versions:
                    v.pk = ids[v.resource_id]
            for r, v in zip(made, versions, strict=True):
                r.published_version = v
            InformationResource.objects.bulk_update(made, ["published_version"])
            InformationItem.objects.bulk_create(
                [
                    InformationItem(
                        resource=r,
                        position=k,
                        code=f"i{k}",
                        name=label,
                        data_type=dtype,
                        length=length,
                        sharing_type=r.sharing_type,
                    )
                    for r, items in zip(made, item_rows, strict=True)
                    for k, (label, dtype, length) in enumerate(items)
                ]
            )
        print(f"  loaded {min(n, start + batch):,} / {n:,}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    t0 = time.perf_counter()
    search.rebuild_index()
    print(f"  index built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def query_mix(count: int, orgs: list[int], seed: int) -> list[tuple[str, dict]]:
    """A realistic mix of (kind, SearchQuery arguments)."""
    rng = random.Random(seed)
    mix = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.45:
            mix.append(("one word", {"text": rng.choice(QUERIES_ONE)}))
        elif roll < 0.65:
            mix.append(("two words", {"text": rng.choice(QUERIES_TWO)}))
        elif roll < 0.80:
            mix.append(
                (
                    "word + facet",
                    {"text": rng.choice(QUERIES_ONE), "sharing_type": rng.choice(("unconditional", "conditional"))},
                )
            )
        elif roll < 0.88:
            mix.append(("department browse", {"provider": rng.choice(orgs)}))
        elif roll < 0.93:
            mix.append(("broad word", {"text": "信息"}))
        elif roll < 0.97:
            mix.append(("no hit", {"text": rng.choice(QUERIES_NONE)}))
        else:
            mix.append(("browse all", {}))
    return mix


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of a list of values."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def main(argv: list[str] | None = None) -> int:
    """Load, warm up, time the query mix, print p50/p95 overall and per kind."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="published entries (default 100000)")
    parser.add_argument("--departments", type=int, default=60)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--database-url", default="", help="PostgreSQL server URL (a fresh database is made)")
    parser.add_argument(
        "--reuse", default="", help="keep the database (SQLite: in DIR; PostgreSQL: named after DIR) and reuse it"
    )
    parser.add_argument("--dump", default="", help="write each query's results as JSON lines to this file")
    parser.add_argument("--no-cache", action="store_true", help="turn the per-generation result cache off")
    args = parser.parse_args(argv)
    workdir = args.reuse or tempfile.mkdtemp(prefix="dgov-bench-catalog-")
    marker = os.path.join(workdir, "bench-catalog.json") if args.reuse else ""
    signature = {"n": args.n, "departments": args.departments, "seed": args.seed, "database": args.database_url}
    reused = False
    if marker and os.path.exists(marker):
        with open(marker) as f:
            reused = json.load(f) == signature
        if not reused:
            parser.error(f"{workdir} holds a database built with other options; remove it first")
    elif args.reuse:
        os.makedirs(workdir, exist_ok=True)
        if os.path.exists(os.path.join(workdir, "dgov.sqlite3")) and not args.database_url:
            parser.error(f"{workdir} holds an unfinished database; remove it first")
    dropper = None
    try:
        if reused:
            os.environ["DGOV_DATA_DIR"] = workdir
            if args.database_url:
                parts = urlsplit(args.database_url)
                os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{reuse_name(workdir)}"))
            else:
                os.environ.pop("DATABASE_URL", None)
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dgov.settings")
            import django

            django.setup()
        else:
            dropper = setup_database(workdir, args.database_url, keep=bool(args.reuse))
        from common import table

        from dgov.catalog import search
        from dgov.kernel.models import Organization

        t0 = time.perf_counter()
        if not reused:
            load(args.n, args.departments, args.seed)
            if marker:
                with open(marker, "w") as f:
                    json.dump(signature, f)
        load_seconds = time.perf_counter() - t0
        if args.no_cache:
            from django.conf import settings

            settings.CATALOG_SEARCH_CACHE_POSTINGS = None
        orgs = list(Organization.objects.values_list("pk", flat=True))
        mix = query_mix(args.queries, orgs, args.seed)
        for _kind, params in mix[:50]:  # warm-up: jieba's dictionary, caches, query plans
            search.search(search.SearchQuery(**params))
        timings: dict[str, list[float]] = {}
        totals = []
        dump = open(args.dump, "w") if args.dump else None  # noqa: SIM115 - closed below
        for kind, params in mix:
            start = time.perf_counter()
            result = search.search(search.SearchQuery(**params))
            elapsed = (time.perf_counter() - start) * 1000
            timings.setdefault(kind, []).append(elapsed)
            totals.append(elapsed)
            if dump:
                record = {
                    "query": params,
                    "total": result.total,
                    "ids": [e.pk for e in result.entries],
                    "scores": {str(k): round(v, 9) for k, v in result.scores.items()},
                    "facets": result.facets,
                }
                dump.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        if dump:
            dump.close()
        backend = "PostgreSQL" if args.database_url else "SQLite"
        built = "reused" if reused else f"loaded and indexed in {load_seconds:.0f} s"
        built += ", result cache off" if args.no_cache else ""
        print(f"catalogue search, {args.n:,} published entries on {backend} ({built})")
        rows = [
            (kind, len(values), round(statistics.median(values), 2), round(percentile(values, 95), 2))
            for kind, values in sorted(timings.items())
        ]
        rows.append(("all", len(totals), round(statistics.median(totals), 2), round(percentile(totals, 95), 2)))
        print(table(("query kind", "queries", "p50 ms", "p95 ms"), rows))
    finally:
        if dropper is not None:
            dropper()
        if not args.reuse:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
