"""Chinese full-text search of the published catalogue: jieba segmentation, a postings table, IDF ranking, facets.

Indexing
    When a version is published (or an entry retired) :func:`index_resource` rebuilds the entry's
    search document from the **published snapshot**: its fields are segmented with
    ``jieba.cut_for_search`` (which adds the dictionary sub-words of long words: 营业执照 →
    营业、执照、营业执照), normalized (NFKC, lower case, no punctuation, no stop words) and stored as
    postings ``(token, entry, weight)`` in :class:`~dgov.catalog.models.SearchToken`, where the
    weight is the field-weighted count (name ×5, keywords ×3, item names ×2, summary, provider and
    classification names ×1). :class:`~dgov.catalog.models.SearchTerm` keeps each token's document
    frequency, and the reserved row ``" docs"`` the number of documents, so ranking never counts
    postings.

Querying
    The query is segmented in precise mode (``jieba.cut``: 营业执照 stays one word) and every
    word must match (AND). A word absent from the index falls back to its ``cut_for_search``
    sub-words (all of them required); a word found in more than ``COMMON_SHARE`` of the entries
    (信息, 数据 …) is dropped when other words remain, as it ranks nothing. Entries score
    Σ weight × idf with idf = ln(1 + (N − df + 0.5)/(df + 0.5)); ties go by code. Because tokens
    are whole words, a query does not match substrings inside other words (营业执照 does not match
    营业额 or 驾驶执照).

Facets
    Counts by provider department, classification 项, sharing type, open attribute and format
    over the current result set (query and every selected filter) come from one statement over
    the hits (SQLite: five ``GROUP BY`` s; PostgreSQL: one pass with ``GROUPING SETS``); the page
    of results (top k by score, ``LIMIT`` in SQL) from another. A B-tree index on ``(token,
    weight descending, entry)`` covers the postings scan (index-only) and gives a one-word query
    its postings best first, so its page reads the top weights only. On PostgreSQL an index-only
    scan needs the visibility map, which :func:`rebuild_index` sets (``VACUUM``) and autovacuum
    keeps.

Cache
    Counts and pages of queries reading many postings (``CATALOG_SEARCH_CACHE_POSTINGS``, default
    2,000) and of browsing are kept in Django's cache under the index generation, a reserved
    :class:`~dgov.catalog.models.SearchTerm` row set to a new random number by every index change
    in its transaction. Every search reads the generation from the database, so no process ever
    serves a result of an older index.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F

from dgov.catalog.models import InformationResource, SearchEntry, SearchTerm, SearchToken

logger = logging.getLogger(__name__)

__all__ = [
    "FACETS",
    "SearchQuery",
    "SearchResult",
    "generation",
    "index_resource",
    "query_words",
    "rebuild_index",
    "search",
    "tokens",
    "unindex_resource",
]

DOCS_KEY = " docs"  # reserved SearchTerm row: the number of search entries (tokens never contain spaces)
GENERATION_KEY = " generation"  # reserved SearchTerm row: the index generation (a new one at every change)
CACHE_POSTINGS = 2000  # queries reading this many postings, and browsing, are cached per generation
CACHE_SECONDS = 3600
MAX_TOKEN = 32
MAX_WEIGHT = 1000
COMMON_SHARE = 0.6
FIELD_WEIGHTS = {"name": 5, "keywords": 3, "items": 2, "summary": 1, "provider": 1, "classes": 1}
STOP_WORDS = frozenset("的了和与及或等之其在是为对由以并中类")
PUBLIC_OPEN_TYPES = ("unconditional", "conditional")
FACETS = ("provider", "class_item", "sharing_type", "open_type", "format")
_WORD = re.compile(r"[0-9a-z\u3400-\u9fff\uf900-\ufaff]")

_jieba = None
_jieba_lock = threading.Lock()


def _segmenter():
    """The jieba module, initialized once per process (its dictionary ships inside the package)."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def _normal(text: str) -> str:
    """NFKC (full-width letters and digits become ASCII) and lower case."""
    return unicodedata.normalize("NFKC", text or "").lower()


def _keep(token: str) -> bool:
    """A token worth indexing: not blank, not a stop word, has a letter, digit or CJK character, not too long."""
    return bool(token) and len(token) <= MAX_TOKEN and token not in STOP_WORDS and bool(_WORD.search(token))


def tokens(text: str) -> list[str]:
    """The index tokens of ``text`` (search-mode segmentation, normalized, stop words removed), in order."""
    jieba = _segmenter()
    return [t for t in (w.strip() for w in jieba.cut_for_search(_normal(text))) if _keep(t)]


def query_words(text: str) -> list[str]:
    """The words of a query (precise-mode segmentation, normalized, deduplicated)."""
    jieba = _segmenter()
    words = [w.strip() for w in jieba.cut(_normal(text))]
    return list(dict.fromkeys(w for w in words if _keep(w)))


# --- Indexing -------------------------------------------------------------------------------------------


def _document(snapshot: dict) -> Counter:
    """Field-weighted token counts of a published snapshot."""
    counts: Counter = Counter()
    parts = {
        "name": snapshot.get("name", ""),
        "keywords": snapshot.get("keywords", ""),
        "items": " ".join(item.get("name", "") for item in snapshot.get("items", [])),
        "summary": snapshot.get("summary", ""),
        "provider": snapshot.get("provider", {}).get("name", ""),
        "classes": " ".join(node.get("name", "") for node in snapshot.get("classification", {}).get("path", [])),
    }
    for part, text in parts.items():
        weight = FIELD_WEIGHTS[part]
        for token in tokens(text):
            counts[token] += weight
    # The resource code is searchable as typed (101001001/000001) and by its two halves.
    code = _normal(snapshot.get("code", ""))
    for token in {code, *code.split("/")}:
        if token and len(token) <= MAX_TOKEN:
            counts[token] += FIELD_WEIGHTS["name"]
    return Counter({token: min(weight, MAX_WEIGHT) for token, weight in counts.items()})


def _entry_fields(resource: InformationResource, snapshot: dict) -> dict:
    """The facet columns of a search entry, from the published snapshot."""
    classification = snapshot.get("classification", {})
    path = classification.get("path", [])
    return {
        "code": snapshot["code"],
        "name": snapshot["name"][:200],
        "provider_id": snapshot["provider"]["id"],
        "class_category": classification.get("category", ""),
        "class_item": path[1]["code"] if len(path) > 1 else (path[0]["code"] if path else ""),
        "sharing_type": snapshot["sharing_type"],
        "open_type": snapshot["open_type"],
        "format": snapshot["format"],
        "published_at": resource.published_version.published_at,
    }


def _adjust_terms(removed: Iterable[str], added: Iterable[str], docs_delta: int) -> None:
    """Keep document frequencies (and the document count) in step with a changed entry."""
    removed, added = list(removed), list(added)
    if removed:
        SearchTerm.objects.filter(token__in=removed).update(df=F("df") - 1)
    if added:
        SearchTerm.objects.bulk_create([SearchTerm(token=t, df=0) for t in added], ignore_conflicts=True)
        SearchTerm.objects.filter(token__in=added).update(df=F("df") + 1)
    if docs_delta:
        SearchTerm.objects.bulk_create([SearchTerm(token=DOCS_KEY, df=0)], ignore_conflicts=True)
        SearchTerm.objects.filter(token=DOCS_KEY).update(df=F("df") + docs_delta)


def index_resource(resource: InformationResource) -> SearchEntry | None:
    """(Re)build the search document of a resource from its published version; remove it when not visible."""
    if resource.published_version_id is None or resource.status == InformationResource.Status.RETIRED:
        unindex_resource(resource)
        return None
    snapshot = resource.published_version.snapshot
    document = _document(snapshot)
    with transaction.atomic():
        entry = SearchEntry.objects.filter(resource=resource).first()
        old: set[str] = set()
        if entry is None:
            entry = SearchEntry.objects.create(resource=resource, **_entry_fields(resource, snapshot))
            docs_delta = 1
        else:
            for name, value in _entry_fields(resource, snapshot).items():
                setattr(entry, name, value)
            entry.save()
            old = set(SearchToken.objects.filter(entry=entry).values_list("token", flat=True))
            SearchToken.objects.filter(entry=entry).delete()
            docs_delta = 0
        SearchToken.objects.bulk_create(
            [SearchToken(token=token, entry=entry, weight=weight) for token, weight in document.items()]
        )
        new = set(document)
        _adjust_terms(old - new, new - old, docs_delta)
        _bump_generation()
    return entry


def unindex_resource(resource: InformationResource) -> None:
    """Remove a resource's search document (retired, or never published)."""
    with transaction.atomic():
        entry = SearchEntry.objects.filter(resource=resource).first()
        if entry is None:
            return
        old = set(SearchToken.objects.filter(entry=entry).values_list("token", flat=True))
        entry.delete()
        _adjust_terms(old, (), -1)
        _bump_generation()


def rebuild_index(*, batch: int = 2000, progress=None) -> int:
    """Rebuild every search document from the published versions (bulk: for imports, benchmarks, repairs)."""
    visible = (
        InformationResource.objects.filter(published_version__isnull=False)
        .exclude(status=InformationResource.Status.RETIRED)
        .select_related("published_version")
        .order_by("pk")
    )
    done = 0
    with transaction.atomic():
        SearchToken.objects.all().delete()
        SearchEntry.objects.all().delete()
        SearchTerm.objects.all().delete()
        chunk: list[InformationResource] = []

        def flush() -> None:
            entries = SearchEntry.objects.bulk_create(
                [SearchEntry(resource=r, **_entry_fields(r, r.published_version.snapshot)) for r in chunk]
            )
            if any(e.pk is None for e in entries):  # backends without RETURNING on bulk insert
                ids = dict(SearchEntry.objects.filter(resource__in=chunk).values_list("resource_id", "pk"))
                for e in entries:
                    e.pk = ids[e.resource_id]
            postings = []
            for resource, entry in zip(chunk, entries, strict=True):
                for token, weight in _document(resource.published_version.snapshot).items():
                    postings.append(SearchToken(token=token, entry_id=entry.pk, weight=weight))
            SearchToken.objects.bulk_create(postings, batch_size=5000)

        for resource in visible.iterator(chunk_size=batch):
            chunk.append(resource)
            if len(chunk) >= batch:
                flush()
                done += len(chunk)
                chunk = []
                if progress:
                    progress(done)
        if chunk:
            flush()
            done += len(chunk)
            if progress:
                progress(done)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {SearchTerm._meta.db_table} (token, df) "  # noqa: S608 - table names only
                f"SELECT token, COUNT(*) FROM {SearchToken._meta.db_table} GROUP BY token"
            )
        SearchTerm.objects.create(token=DOCS_KEY, df=done)
        _bump_generation()
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        _vacuum_index()
    return done


def _vacuum_index() -> None:
    """PostgreSQL: ``VACUUM (ANALYZE)`` the search tables after a bulk rebuild (outside any transaction).

    ANALYZE gives the planner statistics (with none it nests loops over the postings). VACUUM sets
    the visibility map, without which the postings index cannot be read index-only: every
    posting then costs a visit to its heap page, and a token's postings lie on as many pages as
    it has entries (信息, in all of 100,000 entries, read nearly every page of the table —
    40,000 — instead of 900 index pages). Later publications change few pages, which autovacuum
    sets visible again.
    """
    tables = ", ".join(model._meta.db_table for model in (SearchToken, SearchEntry, SearchTerm))
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {tables}")


# --- Querying -------------------------------------------------------------------------------------------


@dataclass
class SearchQuery:
    """What to look for: text and facet filters (each a value; empty means no filter)."""

    text: str = ""
    provider: int | None = None
    class_item: str = ""
    category: str = ""
    sharing_type: str = ""
    open_type: str = ""
    format: str = ""
    public_only: bool = False  # only entries open to the public (无条件/有条件开放)
    page: int = 1
    page_size: int = 20

    def filters(self) -> dict[str, object]:
        """The selected filters as SearchEntry column → value."""
        chosen = {
            "provider_id": self.provider,
            "class_item": self.class_item,
            "class_category": self.category,
            "sharing_type": self.sharing_type,
            "open_type": self.open_type,
            "format": self.format,
        }
        return {column: value for column, value in chosen.items() if value not in (None, "")}


@dataclass
class SearchResult:
    """A page of ranked entries, the total, facet counts and the words the query was understood as."""

    total: int
    entries: list[SearchEntry]
    scores: dict[int, float]
    facets: dict[str, dict[str, int]]
    words: list[str]
    dropped: list[str] = field(default_factory=list)
    page: int = 1
    page_size: int = 20

    @property
    def pages(self) -> int:
        """The number of pages."""
        return max(1, math.ceil(self.total / self.page_size)) if self.page_size else 1


@dataclass
class _Plan:
    """How a query runs: required tokens with their idf, dropped common words, postings read, index generation."""

    required: list[str]
    idf: dict[str, float]
    dropped: list[str]
    postings: int
    generation: int


def _term_stats(candidates: Iterable[str]) -> tuple[dict[str, int], int, int]:
    """Document frequencies of the candidate tokens, the number of documents and the index generation."""
    wanted = list(dict.fromkeys(candidates))
    rows = dict(SearchTerm.objects.filter(token__in=[*wanted, DOCS_KEY, GENERATION_KEY]).values_list("token", "df"))
    docs = rows.pop(DOCS_KEY, 0)
    generation = rows.pop(GENERATION_KEY, 0)
    return {t: df for t, df in rows.items() if df > 0}, docs, generation


def _plan(words: list[str]) -> _Plan | None:
    """Required tokens and their idf for the query words; None when some word matches nothing."""
    jieba = _segmenter()
    fallbacks = {w: [t for t in (s.strip() for s in jieba.cut_for_search(w)) if _keep(t) and t != w] for w in words}
    df, docs, generation = _term_stats([*words, *(t for subs in fallbacks.values() for t in subs)])
    required: list[str] = []
    for word in words:
        if word in df:
            required.append(word)
            continue
        subs = [t for t in fallbacks[word] if len(t) > 1] or fallbacks[word]
        if not subs or any(t not in df for t in subs):
            return None
        required.extend(subs)
    required = list(dict.fromkeys(required))
    dropped = []
    if docs and len(required) > 1:
        common = [t for t in required if df[t] > COMMON_SHARE * docs]
        if len(common) < len(required):
            dropped = common
            required = [t for t in required if t not in common]
    n = max(docs, 1)
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in required}
    return _Plan(required, idf, dropped, sum(df[t] for t in required), generation)


def _where(filters: dict[str, object], alias: str, *, public_only: bool = False) -> tuple[str, list]:
    """SQL conditions and parameters for the selected filters on the entry table."""
    clauses, params = [], []
    for column, value in filters.items():
        clauses.append(f"{alias}.{column} = %s")
        params.append(value)
    if public_only:
        clauses.append(f"{alias}.open_type IN (%s, %s)")
        params.extend(PUBLIC_OPEN_TYPES)
    return (" AND " + " AND ".join(clauses)) if clauses else "", params


# Facet name → SearchEntry column (as text, so that the five counts share one result shape).
_FACET_COLUMNS = {
    "provider": "CAST(e.provider_id AS VARCHAR(20))",
    "class_item": "e.class_item",
    "sharing_type": "e.sharing_type",
    "open_type": "e.open_type",
    "format": "e.format",
}
# PostgreSQL counts the facets in one pass over the rows with two grouping sets — (provider, 项)
# and (sharing type, open attribute, format), a few hundred combinations at most — whose counts add
# up to the five facets: two hash lookups a row instead of five. GROUPING(provider) is 0 in the
# first set, 1 in the second.
_PG_FACET_COLUMNS = ("e.provider_id", "e.class_item", "e.sharing_type", "e.open_type", "e.format")
_PG_FACET_SETS = ((0, 1), (2, 3, 4))  # facet indexes of each grouping set, by GROUPING(provider)


def _facet_rows(source: str, params: list, *, shared: bool) -> list[tuple[int, object, int]]:
    """Rows ``(facet index, value, count)`` of the facet counts over ``source`` (rows aliased ``e``).

    A facet value may come in several rows (their counts add up). PostgreSQL: one ``GROUP BY
    GROUPING SETS`` — a single pass over the rows, which are neither materialized nor read five
    times. SQLite (no grouping sets): five ``GROUP BY`` s joined by ``UNION ALL``; with ``shared``
    the rows are computed once as a common table expression (a CTE referenced more than once is
    materialized), without it each count reads ``source`` itself, which lets plain filters over the
    entry table use its facet indexes.
    """
    if connection.vendor == "postgresql":
        columns = ", ".join(_PG_FACET_COLUMNS)
        sets = ", ".join("(" + ", ".join(_PG_FACET_COLUMNS[i] for i in group) + ")" for group in _PG_FACET_SETS)
        sql = (
            f"SELECT GROUPING({_PG_FACET_COLUMNS[0]}), {columns}, COUNT(*) FROM {source} "  # noqa: S608
            f"GROUP BY GROUPING SETS ({sets})"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return [(i, values[i], count) for grouping, *values, count in rows for i in _PG_FACET_SETS[grouping]]
    if shared:
        columns = ", ".join(f"{expr} AS f{i}" for i, expr in enumerate(_FACET_COLUMNS.values()))
        parts = [f"SELECT {i}, f{i}, COUNT(*) FROM m GROUP BY f{i}" for i in range(len(FACETS))]
        sql = f"WITH m AS (SELECT {columns} FROM {source}) " + " UNION ALL ".join(parts)  # noqa: S608
        sql_params = params
    else:
        parts = [
            f"SELECT {i}, {expr}, COUNT(*) FROM {source} GROUP BY {expr}"  # noqa: S608
            for i, expr in enumerate(_FACET_COLUMNS.values())
        ]
        sql = " UNION ALL ".join(parts)
        sql_params = params * len(FACETS)
    with connection.cursor() as cursor:
        cursor.execute(sql, sql_params)
        return cursor.fetchall()


def _count_facets(source: str, params: list, *, shared: bool) -> tuple[int, dict[str, dict[str, int]]]:
    """The total and each facet's counts (count descending, then value) over ``source`` (rows aliased ``e``)."""
    counts: dict[str, Counter] = {name: Counter() for name in FACETS}
    for index, value, count in _facet_rows(source, params, shared=shared):
        counts[FACETS[index]][str(value)] += int(count)
    facets = {name: dict(sorted(pairs.items(), key=lambda pair: (-pair[1], pair[0]))) for name, pairs in counts.items()}
    return sum(facets[FACETS[0]].values()), facets


# --- Result cache per index generation ------------------------------------------------------------------


def _cache_threshold() -> int:
    """Queries reading at least this many postings (or browsing) are cached; ``None`` in settings disables."""
    value = getattr(settings, "CATALOG_SEARCH_CACHE_POSTINGS", CACHE_POSTINGS)
    return -1 if value is None else int(value)


def _cache_key(kind: str, generation: int, parts: tuple) -> str:
    """A cache key bound to the index generation (a new generation makes every older key unreachable)."""
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:40]
    return f"dgov:catalog:search:{generation}:{kind}:{digest}"


def _cache_get(key: str | None):
    """The cached value or None (a failing cache backend only costs the computation)."""
    if key is None:
        return None
    try:
        return cache.get(key)
    except Exception:  # noqa: BLE001 - the cache is an optimization, never a failure
        logger.warning("catalogue search cache unavailable", exc_info=True)
        return None


def _cache_set(key: str | None, value) -> None:
    """Store a value (failures are logged and ignored)."""
    if key is None:
        return
    try:
        cache.set(key, value, CACHE_SECONDS)
    except Exception:  # noqa: BLE001 - the cache is an optimization, never a failure
        logger.warning("catalogue search cache unavailable", exc_info=True)


def _bump_generation() -> None:
    """Give the index a new generation (a random positive number), inside the caller's transaction.

    A random value rather than a counter: a database restored from a backup, or rolled back (as
    in tests), never meets cache entries of another history under the same number.
    """
    value = secrets.randbelow(2**31 - 2) + 1
    if not SearchTerm.objects.filter(token=GENERATION_KEY).update(df=value):
        SearchTerm.objects.bulk_create([SearchTerm(token=GENERATION_KEY, df=value)], ignore_conflicts=True)
        SearchTerm.objects.filter(token=GENERATION_KEY).update(df=value)


def generation() -> int:
    """The current index generation (changes with every publication, retirement and rebuild)."""
    return SearchTerm.objects.filter(token=GENERATION_KEY).values_list("df", flat=True).first() or 0


# --- Search ---------------------------------------------------------------------------------------------


def search(query: SearchQuery) -> SearchResult:
    """Ranked, faceted search of the published catalogue (see the module docstring)."""
    entry_table = SearchEntry._meta.db_table
    token_table = SearchToken._meta.db_table
    page = max(1, query.page)
    size = max(1, min(query.page_size, 100))
    offset = (page - 1) * size
    filters = query.filters()
    where, where_params = _where(filters, "e", public_only=query.public_only)
    filter_key = (tuple(sorted(filters.items())), query.public_only)
    threshold = _cache_threshold()
    words = query_words(query.text)
    if not words:
        stats = dict(SearchTerm.objects.filter(token__in=[DOCS_KEY, GENERATION_KEY]).values_list("token", "df"))
        cached = threshold >= 0 and stats.get(DOCS_KEY, 0) >= threshold
        gen = stats.get(GENERATION_KEY, 0)
        counts_key = _cache_key("counts", gen, ((), filter_key)) if cached else None
        page_key = _cache_key("page", gen, ((), filter_key, page, size)) if cached else None
        counted = _cache_get(counts_key)
        if counted is None:
            counted = _count_facets(f"{entry_table} e WHERE 1=1{where}", where_params, shared=False)  # noqa: S608
            _cache_set(counts_key, counted)
        ids = _cache_get(page_key)
        if ids is None:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT e.id FROM {entry_table} e WHERE 1=1{where} "  # noqa: S608
                    "ORDER BY e.published_at DESC, e.code LIMIT %s OFFSET %s",
                    [*where_params, size, offset],
                )
                ids = [row[0] for row in cursor.fetchall()]
            _cache_set(page_key, ids)
        total, facets = counted
        return SearchResult(total, _load(ids), {}, facets, [], [], page, size)
    plan = _plan(words)
    if plan is None:
        return SearchResult(0, [], {}, {name: {} for name in FACETS}, words, [], page, size)
    required, idf = plan.required, plan.idf
    cached = threshold >= 0 and plan.postings >= threshold
    counts_key = _cache_key("counts", plan.generation, (tuple(required), filter_key)) if cached else None
    page_key = _cache_key("page", plan.generation, (tuple(required), filter_key, page, size)) if cached else None
    if len(required) == 1:
        # One token: its postings are the hits, one per entry; the score is weight × idf. The idf
        # is positive, so the weight orders as the score does, and the postings index, which keeps
        # a token's postings by weight descending, yields the best first: the page reads the top
        # weights only (the entries of the last weight it needs, to order them by code).
        hits = (
            f"SELECT t.entry_id AS entry_id, t.weight AS weight, t.weight * %s AS score "  # noqa: S608
            f"FROM {token_table} t WHERE t.token = %s"
        )
        hits_params = [idf[required[0]], required[0]]
        order = "h.weight DESC, e.code"
        matched = f"SELECT t.entry_id AS entry_id FROM {token_table} t WHERE t.token = %s"  # noqa: S608
        matched_params = [required[0]]
    else:
        marks = ", ".join(["%s"] * len(required))
        case = " ".join("WHEN %s THEN %s" for _ in required)
        case_params = [p for t in required for p in (t, idf[t])]
        # Postings of the required tokens, summed per entry; an entry must hold every required token.
        hits = (
            f"SELECT t.entry_id AS entry_id, SUM(t.weight * (CASE t.token {case} ELSE 0 END)) AS score "  # noqa: S608
            f"FROM {token_table} t WHERE t.token IN ({marks}) GROUP BY t.entry_id HAVING COUNT(*) = %s"
        )
        hits_params = [*case_params, *required, len(required)]
        order = "h.score DESC, e.code"
        matched = (
            f"SELECT t.entry_id AS entry_id FROM {token_table} t WHERE t.token IN ({marks}) "  # noqa: S608
            "GROUP BY t.entry_id HAVING COUNT(*) = %s"
        )
        matched_params = [*required, len(required)]
    counted = _cache_get(counts_key)
    if counted is None:
        # The counts need the matching entries, not their scores.
        counted = _count_facets(
            f"({matched}) h JOIN {entry_table} e ON e.id = h.entry_id WHERE 1=1{where}",  # noqa: S608
            [*matched_params, *where_params],
            shared=True,
        )
        _cache_set(counts_key, counted)
    rows = _cache_get(page_key)
    if rows is None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT e.id, h.score FROM ({hits}) h JOIN {entry_table} e ON e.id = h.entry_id "  # noqa: S608
                f"WHERE 1=1{where} ORDER BY {order} LIMIT %s OFFSET %s",
                [*hits_params, *where_params, size, offset],
            )
            rows = [(entry_id, float(score)) for entry_id, score in cursor.fetchall()]
        _cache_set(page_key, rows)
    total, facets = counted
    scores = dict(rows)
    return SearchResult(total, _load(list(scores)), scores, facets, required, plan.dropped, page, size)


def _load(ids: list[int]) -> list[SearchEntry]:
    """Search entries by id, in the given order, with their resource and provider."""
    by_id = SearchEntry.objects.select_related("provider", "resource").in_bulk(ids)
    return [by_id[i] for i in ids if i in by_id]
