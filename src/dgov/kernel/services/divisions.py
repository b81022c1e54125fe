"""Administrative divisions (行政区划): loading GB/T 2260, demo townships and villages, lookups.

How python-stdnum's ``stdnum/cn/loc.dat`` encodes the tree (parsed by
:func:`dgov.kernel.validators.parse_loc_dat`):

* a 2-digit line ``37 province="山东省"`` is the province 370000;
* under it, 4-digit entries complete the 6-digit code: ``xx00`` (code ppcc00) is a prefecture-level
  division (地级: 市, 地区, 自治州, 盟), anything else (ppccdd) is county level (县级: 区, 县, 县级市, 旗);
  the ``0000`` entry repeats the province itself;
* names carry validity ranges: ``[1983-]历下区`` (since 1983), ``[-2010]崇文区`` (until 2010),
  ``[1983-1992]郊区,[1993-]任城区`` (renamed). A code is *current* when one of its names has no
  end year; its current name is that one. Unbracketed names are current.

Placeholders (统计用汇总码): GB/T 2260 has grouping codes that are not places — ``市辖区`` (the
municipalities' ppcc00 = 110100, and every prefecture's ppcc01 "districts of the city"), ``县``
(500200), ``市``, and ``省直辖县级行政单位``/``自治区直辖县级行政单位`` (pp9000). We keep them as
rows with ``placeholder=True`` because ID numbers issued in the 1980s–90s carry ppcc01 codes and the
counties of municipalities hang under 110100; but full names skip them ("北京市东城区", not
"北京市市辖区东城区"), search skips them, and :func:`children` looks through them (the children of
北京市 are its districts).

Parents: a county's parent is its prefecture ppcc00 when that code is current, else the province
(the 省直辖 counties, and a few codes the source lists without a current prefecture).

Townships (9 digits, GB/T 10114 style: 001–099 街道, 100–199 镇, 200–399 乡) and villages (12 digits:
001–199 社区/居委会, 200–399 村) are synthetic and generated for the demo province only.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from django.db import transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from dgov.kernel.models import Division
from dgov.kernel.services import audit
from dgov.kernel.validators import LocEntry, parse_loc_dat

__all__ = [
    "DivisionLoadResult",
    "ancestors",
    "children",
    "find_divisions",
    "full_name_of",
    "generate_demo_subdivisions",
    "get_division",
    "invalidate_division_cache",
    "known_division_codes",
    "load_divisions",
    "scope_prefix",
]

logger = logging.getLogger(__name__)

Level = Division.Level

PLACEHOLDER_NAMES = frozenset(
    {"市辖区", "县", "市", "省直辖县级行政单位", "自治区直辖县级行政单位", "省直辖县级行政区划"}
)


def is_placeholder_name(name: str) -> bool:
    """True for GB/T 2260 grouping names that are not real places (see the module docstring)."""
    return name in PLACEHOLDER_NAMES


def level_of_code(code: str) -> int:
    """The division level implied by a code's shape (6-digit pp0000/ppcc00/ppccdd, 9, 12 digits)."""
    if len(code) == 12:
        return Level.VILLAGE
    if len(code) == 9:
        return Level.TOWNSHIP
    if code[2:] == "0000":
        return Level.PROVINCE
    if code[4:] == "00":
        return Level.CITY
    return Level.COUNTY


def scope_prefix(code: str) -> str:
    """The code prefix shared by a division and everything below it (370000 → 37, 370100 → 3701)."""
    if len(code) == 6:
        if code[2:] == "0000":
            return code[:2]
        if code[4:] == "00":
            return code[:4]
    return code


# --- In-process cache of current codes (for the validators) ----------------------------------------

_CACHE_SECONDS = 300.0  # other processes pick up loads and admin edits within this time
_cache_lock = threading.Lock()
_cached_codes: frozenset[str] | None = None
_cached_at = 0.0


def known_division_codes() -> frozenset[str]:
    """All current division codes in the database, cached in-process for a few minutes."""
    global _cached_codes, _cached_at
    now = time.monotonic()
    codes = _cached_codes
    if codes is not None and now - _cached_at < _CACHE_SECONDS:
        return codes
    with _cache_lock:
        if _cached_codes is None or time.monotonic() - _cached_at >= _CACHE_SECONDS:
            _cached_codes = frozenset(Division.objects.filter(is_current=True).values_list("code", flat=True))
            _cached_at = time.monotonic()
        return _cached_codes


def invalidate_division_cache() -> None:
    """Forget the cached code set (after loading or editing divisions)."""
    global _cached_codes
    with _cache_lock:
        _cached_codes = None


def _invalidate_now_and_on_commit() -> None:
    """Invalidate now (this transaction sees its own writes) and again once the writes are visible."""
    invalidate_division_cache()
    transaction.on_commit(invalidate_division_cache)


# --- Loading GB/T 2260 --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DivisionLoadResult:
    """What :func:`load_divisions` did."""

    created: int
    updated: int
    unchanged: int
    retired: int
    seconds: float

    @property
    def total(self) -> int:
        """Current divisions in the source after the load."""
        return self.created + self.updated + self.unchanged


@dataclass(frozen=True)
class _Row:
    """A current division computed from loc.dat, before it meets the database."""

    code: str
    name: str
    level: int
    parent_code: str | None
    placeholder: bool
    full_name: str


def _default_loc_text() -> str:
    """The loc.dat shipped with the installed python-stdnum."""
    return (resources.files("stdnum") / "cn" / "loc.dat").read_text(encoding="utf-8")


def _current_rows(entries: dict[str, LocEntry], provinces: set[str] | None) -> list[_Row]:
    """Current divisions with parent, placeholder flag and full name, parents before children."""
    current = {
        code: entry.current_name
        for code, entry in entries.items()
        if entry.current_name is not None and (provinces is None or code[:2] in provinces)
    }
    rows: dict[str, _Row] = {}
    for code in sorted(current, key=lambda c: (level_of_code(c), c)):
        name = current[code]
        level = level_of_code(code)
        if level == Level.PROVINCE:
            parent_code = None
        elif level == Level.CITY:
            parent_code = f"{code[:2]}0000"
        else:
            parent_code = f"{code[:4]}00" if f"{code[:4]}00" in current else f"{code[:2]}0000"
        if parent_code is not None and parent_code not in rows:
            continue  # its province is not current (cannot happen in the shipped file)
        placeholder = is_placeholder_name(name)
        rows[code] = _Row(code, name, level, parent_code, placeholder, "")
    # Full names need the whole chain, so compute them once every row is known.
    result = []
    for row in rows.values():
        result.append(
            _Row(row.code, row.name, row.level, row.parent_code, row.placeholder, _chain_name(row, rows))
        )
    return result


def _chain_name(row: _Row, rows: dict[str, _Row]) -> str:
    """Names from the province down, placeholders above ``row`` skipped ("山东省济南市历下区")."""
    names = [row.name]
    parent = rows.get(row.parent_code or "")
    while parent is not None:
        if not parent.placeholder:
            names.append(parent.name)
        parent = rows.get(parent.parent_code or "")
    return "".join(reversed(names))


def load_divisions(
    *,
    actor=None,
    path: str | Path | None = None,
    text: str | None = None,
    provinces: Iterable[str] | None = None,
) -> DivisionLoadResult:
    """Load the current province/city/county divisions from loc.dat; idempotent (updates, never duplicates).

    ``provinces`` (2-digit prefixes) restricts the load, for small test databases. Divisions in the
    database that are no longer current in the source are marked ``is_current=False``, not deleted
    (records refer to them). Synthetic townships and villages are left alone.
    """
    started = time.perf_counter()
    if text is None:
        text = Path(path).read_text(encoding="utf-8") if path else _default_loc_text()
    wanted = {p[:2] for p in provinces} if provinces is not None else None
    rows = _current_rows(parse_loc_dat(text), wanted)
    created = updated = unchanged = 0
    with transaction.atomic():
        existing = {d.code: d for d in Division.objects.filter(level__lte=Level.COUNTY, synthetic=False)}
        pk_by_code = {code: d.pk for code, d in existing.items()}
        fields = ["name", "level", "parent_id", "full_name", "placeholder", "is_current"]
        to_update: list[Division] = []
        for level in (Level.PROVINCE, Level.CITY, Level.COUNTY):
            new: list[Division] = []
            for row in (r for r in rows if r.level == level):
                parent_id = pk_by_code[row.parent_code] if row.parent_code else None
                values = {
                    "name": row.name,
                    "level": row.level,
                    "parent_id": parent_id,
                    "full_name": row.full_name,
                    "placeholder": row.placeholder,
                    "is_current": True,
                }
                division = existing.get(row.code)
                if division is None:
                    new.append(Division(code=row.code, synthetic=False, **values))
                elif any(getattr(division, f) != v for f, v in values.items()):
                    for f, v in values.items():
                        setattr(division, f, v)
                    to_update.append(division)
                else:
                    unchanged += 1
            if new:
                Division.objects.bulk_create(new, batch_size=500)
                created += len(new)
                # Not every backend returns primary keys from bulk inserts; ask once per level.
                pk_by_code.update(
                    Division.objects.filter(code__in=[d.code for d in new]).values_list("code", "pk")
                )
        if to_update:
            Division.objects.bulk_update(to_update, fields, batch_size=500)
            updated = len(to_update)
        current_codes = {r.code for r in rows}
        stale = [
            d.pk
            for code, d in existing.items()
            if code not in current_codes and d.is_current and (wanted is None or code[:2] in wanted)
        ]
        retired = Division.objects.filter(pk__in=stale).update(is_current=False) if stale else 0
        seconds = time.perf_counter() - started
        audit.record(
            "kernel.division.load",
            actor=actor,
            detail={
                "created": created,
                "updated": updated,
                "unchanged": unchanged,
                "retired": retired,
                "provinces": sorted(wanted) if wanted else "all",
            },
        )
        _invalidate_now_and_on_commit()
    return DivisionLoadResult(created, updated, unchanged, retired, round(seconds, 3))


# --- Demo townships and villages ------------------------------------------------------------------

_SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆范金石廖贾夏付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶贺顾毛郝龚邵万钱严武戴孔汤"
)
_NATURE = "龙凤石柳杨桃梨枣杏松柏槐金银玉清泉沙河湖山岭崖梅兰竹荷"
_PLACE_SUFFIX = (
    "家庄",
    "家集",
    "官庄",
    "店",
    "庄",
    "集",
    "口",
    "营",
    "屯",
    "桥",
    "山",
    "河",
    "泉",
    "岭",
    "寨",
    "埠",
    "坡",
    "园",
)
_VILLAGE_SUFFIX = (
    "家庄",
    "家村",
    "家洼",
    "家河",
    "家沟",
    "家岭",
    "家营",
    "家店",
    "家楼",
    "庄",
    "屯",
    "集",
    "官庄",
    "寨",
    "家峪",
)
_DIRECTIONS = ("", "", "", "前", "后", "东", "西", "南", "北", "大", "小", "上", "下")
_STREET_WORDS = (
    "文化",
    "建设",
    "人民",
    "解放",
    "和平",
    "胜利",
    "青年",
    "新华",
    "东风",
    "光明",
    "中山",
    "泉城",
    "燕山",
    "舜华",
    "龙洞",
    "开元",
    "振兴",
    "凤凰",
    "长江",
    "黄河",
    "泰山",
    "金山",
    "银河",
    "幸福",
    "朝阳",
    "东关",
    "西关",
    "南关",
    "北关",
    "城东",
    "城西",
    "城南",
    "城北",
    "府前",
    "汇泉",
    "滨河",
    "新城",
    "科苑",
)
_COMMUNITY_WORDS = (
    "和平",
    "幸福",
    "阳光",
    "康乐",
    "新华",
    "丽景",
    "花园",
    "锦绣",
    "明湖",
    "翠园",
    "金桥",
    "东方",
    "盛世",
    "泉韵",
    "绿地",
    "青年",
    "文化",
    "安居",
    "丰和",
    "富康",
    "兴隆",
    "永安",
    "福寿",
    "春晖",
    "书香",
    "滨湖",
    "望岳",
)


@dataclass(frozen=True)
class DemoSubdivisionResult:
    """What :func:`generate_demo_subdivisions` did."""

    townships: int
    villages: int
    created: int
    updated: int


def _unique(rng: random.Random, make, used: set[str]) -> str:
    """Draw names from ``make(rng)`` until one is not in ``used`` (a number is appended as last resort)."""
    for _attempt in range(50):
        name = make(rng)
        if name not in used:
            used.add(name)
            return name
    base = make(rng)
    n = 2
    while f"{base}{n}" in used:
        n += 1
    used.add(f"{base}{n}")
    return f"{base}{n}"


def _street_name(rng: random.Random) -> str:
    """A 街道 name such as 文化路街道 or 东关街道."""
    word = rng.choice(_STREET_WORDS)
    return f"{word}{rng.choice(('', '路', '', '里'))}街道"


def _town_name(rng: random.Random, suffix: str) -> str:
    """A 镇/乡 name such as 王家庄镇 or 石河乡."""
    head = rng.choice(_SURNAMES) if rng.random() < 0.6 else rng.choice(_NATURE)
    return f"{head}{rng.choice(_PLACE_SUFFIX)}{suffix}"


def _village_name(rng: random.Random) -> str:
    """A 村 name such as 前王家庄村."""
    return f"{rng.choice(_DIRECTIONS)}{rng.choice(_SURNAMES)}{rng.choice(_VILLAGE_SUFFIX)}村"


def _community_name(rng: random.Random) -> str:
    """A 社区 name such as 和平社区 or 东锦绣社区."""
    return f"{rng.choice(('', '', '东', '西', '南', '北', '新'))}{rng.choice(_COMMUNITY_WORDS)}社区"


def _township_plan(rng: random.Random, county_name: str, count: int) -> list[tuple[str, str]]:
    """(kind, name) for the townships of one county: districts are mostly 街道, counties 镇 and 乡."""
    if county_name.endswith("区"):
        weights = {"街道": 0.7, "镇": 0.3, "乡": 0.0}
    elif county_name.endswith("市"):
        weights = {"街道": 0.35, "镇": 0.6, "乡": 0.05}
    else:
        weights = {"街道": 0.15, "镇": 0.65, "乡": 0.2}
    kinds = rng.choices(list(weights), weights=list(weights.values()), k=count)
    order = {"街道": 0, "镇": 1, "乡": 2}
    kinds.sort(key=order.__getitem__)
    used: set[str] = set()
    plan = []
    for kind in kinds:
        if kind == "街道":
            plan.append((kind, _unique(rng, _street_name, used)))
        else:
            plan.append((kind, _unique(rng, lambda r, k=kind: _town_name(r, k), used)))
    return plan


def generate_demo_subdivisions(
    province_code: str,
    seed: int = 2260,
    townships_per_county: tuple[int, int] = (3, 6),
    villages_per_township: tuple[int, int] = (4, 10),
    *,
    actor=None,
) -> DemoSubdivisionResult:
    """Generate synthetic townships and villages under every county of one province; deterministic.

    The same seed always yields the same codes and names (each county draws from its own seeded
    generator, so adding a county elsewhere does not shift the others). Re-running creates missing
    rows and renames changed ones; it never duplicates. All rows are ``synthetic=True``.
    """
    province = Division.objects.get(code=province_code, level=Level.PROVINCE)
    prefix = scope_prefix(province.code)
    counties = list(
        Division.objects.filter(
            code__startswith=prefix, level=Level.COUNTY, is_current=True, placeholder=False
        ).order_by("code")
    )
    t_low, t_high = townships_per_county
    v_low, v_high = villages_per_township
    if not (0 < t_low <= t_high < 100 and 0 < v_low <= v_high < 200):
        raise ValueError("townships_per_county must be within 1..99 and villages_per_township within 1..199")
    townships: list[tuple[Division, str, str, str]] = []  # county, code, name, full name
    villages: list[tuple[str, str, str, str]] = []  # township code, code, name, full name
    for county in counties:
        rng = random.Random(f"{seed}:{county.code}")
        counters = {"街道": 1, "镇": 100, "乡": 200}
        for kind, name in _township_plan(rng, county.name, rng.randint(t_low, t_high)):
            t_code = f"{county.code}{counters[kind]:03d}"
            counters[kind] += 1
            t_full = f"{county.full_name}{name}"
            townships.append((county, t_code, name, t_full))
            community_share = {"街道": 0.85, "镇": 0.2, "乡": 0.0}[kind]
            used: set[str] = set()
            v_counters = {"社区": 1, "村": 200}
            for _i in range(rng.randint(v_low, v_high)):
                is_community = rng.random() < community_share
                kind_v = "社区" if is_community else "村"
                v_name = _unique(rng, _community_name if is_community else _village_name, used)
                v_code = f"{t_code}{v_counters[kind_v]:03d}"
                v_counters[kind_v] += 1
                villages.append((t_code, v_code, v_name, f"{t_full}{v_name}"))
    with transaction.atomic():
        existing = {
            d.code: d for d in Division.objects.filter(code__startswith=prefix, level__gte=Level.TOWNSHIP)
        }
        created = updated = 0
        to_update: list[Division] = []

        def upsert(batch: list[tuple[str, str, str, int, int]]) -> None:
            """Create or update (code, name, full name, level, parent id) rows in bulk."""
            nonlocal created
            new = []
            for code, name, full, level, parent_id in batch:
                division = existing.get(code)
                if division is None:
                    new.append(
                        Division(
                            code=code,
                            name=name,
                            full_name=full,
                            level=level,
                            parent_id=parent_id,
                            synthetic=True,
                        )
                    )
                elif (division.name, division.full_name, division.parent_id, division.is_current) != (
                    name,
                    full,
                    parent_id,
                    True,
                ):
                    division.name, division.full_name, division.parent_id = name, full, parent_id
                    division.is_current = True
                    to_update.append(division)
            Division.objects.bulk_create(new, batch_size=1000)
            created += len(new)

        upsert([(code, name, full, Level.TOWNSHIP, county.pk) for county, code, name, full in townships])
        township_pk = dict(
            Division.objects.filter(code__in=[t[1] for t in townships]).values_list("code", "pk")
        )
        upsert(
            [(code, name, full, Level.VILLAGE, township_pk[t_code]) for t_code, code, name, full in villages]
        )
        if to_update:
            Division.objects.bulk_update(
                to_update, ["name", "full_name", "parent_id", "is_current"], batch_size=1000
            )
            updated = len(to_update)
        audit.record(
            "kernel.division.generate_demo",
            actor=actor,
            target=province,
            detail={
                "seed": seed,
                "townships": len(townships),
                "villages": len(villages),
                "created": created,
                "updated": updated,
            },
        )
        _invalidate_now_and_on_commit()
    return DemoSubdivisionResult(len(townships), len(villages), created, updated)


# --- Lookups ----------------------------------------------------------------------------------------


def get_division(code: str) -> Division | None:
    """The division with this code (any level, current or not), or None."""
    return Division.objects.select_related("parent").filter(code=str(code).strip()).first()


def find_divisions(
    name_query: str,
    level: int | None = None,
    *,
    limit: int | None = 50,
    include_placeholders: bool = False,
    include_abolished: bool = False,
) -> list[Division]:
    """Divisions whose name or full name contains ``name_query`` (or whose code starts with it, if digits).

    Exact name matches come first, then higher levels, then by code.
    """
    query = (name_query or "").strip()
    qs = Division.objects.select_related("parent")
    if query:
        condition = Q(name__contains=query) | Q(full_name__contains=query)
        if query.isdigit():
            condition |= Q(code__startswith=query)
        qs = qs.filter(condition)
    if level is not None:
        qs = qs.filter(level=level)
    if not include_placeholders:
        qs = qs.filter(placeholder=False)
    if not include_abolished:
        qs = qs.filter(is_current=True)
    exact = Case(
        When(Q(name=query) | Q(code=query), then=Value(0)), default=Value(1), output_field=IntegerField()
    )
    qs = qs.annotate(_exact=exact).order_by("_exact", "level", "code")
    return list(qs[:limit] if limit else qs)


def ancestors(division: Division, *, include_placeholders: bool = False) -> list[Division]:
    """The divisions above ``division``, from the province down to its parent (one query)."""
    code = division.code
    candidates = {f"{code[:2]}0000", f"{code[:4]}00", code[:6], code[:9]} - {code}
    by_pk = {d.pk: d for d in Division.objects.filter(code__in=candidates)}
    chain: list[Division] = []
    parent_id = division.parent_id
    while parent_id is not None:
        parent = by_pk.get(parent_id) or Division.objects.get(pk=parent_id)  # irregular trees: walk on
        chain.append(parent)
        parent_id = parent.parent_id
    chain.reverse()
    return chain if include_placeholders else [d for d in chain if not d.placeholder]


def children(
    code: str, *, include_placeholders: bool = False, include_abolished: bool = False
) -> list[Division]:
    """The divisions directly below ``code``, looking through placeholders (北京市 → its districts)."""
    qs = Division.objects.select_related("parent").filter(parent__code=code)
    if not include_abolished:
        qs = qs.filter(is_current=True)
    result: list[Division] = []
    for child in qs.order_by("code"):
        if child.placeholder and not include_placeholders:
            result.extend(children(child.code, include_abolished=include_abolished))
        else:
            result.append(child)
    return sorted(result, key=lambda d: d.code)


def full_name_of(code: str) -> str:
    """The full name of a division code ("山东省济南市历下区"), or "" if unknown."""
    return Division.objects.filter(code=code).values_list("full_name", flat=True).first() or ""


def divisions_in_scope(code: str) -> QuerySet[Division]:
    """A division and every division below it, by code prefix."""
    return Division.objects.filter(code__startswith=scope_prefix(code))
