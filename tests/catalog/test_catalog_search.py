"""Chinese search: segmentation instead of substring matching, ranking, facets, index upkeep."""

from collections import Counter

import pytest
from django.db import connection

from dgov.catalog import search, services
from dgov.catalog.models import SearchEntry, SearchTerm, SearchToken

pytestmark = pytest.mark.django_db

FREE = [{"code": "no", "name": "编号", "data_type": "C", "length": 20}]


@pytest.fixture
def published(users, make_entry):
    """A small published catalogue across three departments."""
    dsj = users["dsj"]
    made = {
        "licence": make_entry(users["scjg"], name="企业营业执照信息", publish_by=dsj, open_type="unconditional"),
        "revenue": make_entry(
            users["scjg"],
            name="企业营业额统计信息",
            cls="207",
            items=FREE,
            publish_by=dsj,
            summary="按季度汇总的企业营业额。",
            keywords="营业额",
        ),
        "driving": make_entry(
            users["ga"],
            name="机动车驾驶执照信息",
            cls="101001",
            items=FREE,
            publish_by=dsj,
            summary="驾驶证的准驾车型和有效期。",
            keywords="驾驶证",
            sharing_type="conditional",
            sharing_conditions="交通管理",
        ),
        "mention": make_entry(
            users["mz"],
            name="社会组织登记信息",
            cls="102002",
            items=FREE,
            publish_by=dsj,
            summary="社会组织登记证书信息，可与营业执照信息对照。",
            keywords="社团",
        ),
        "draft": make_entry(users["scjg"], name="个体工商户营业执照信息", items=FREE),
    }
    return made


def codes(result):
    return [e.code for e in result.entries]


def test_segmented_query_finds_words_not_substrings(published):
    result = search.search(search.SearchQuery(text="营业执照"))
    assert result.words == ["营业执照"]
    found = codes(result)
    assert found[0] == published["licence"].code  # the title match ranks first
    assert published["mention"].code in found  # mentioned in the summary: found, ranked lower
    assert published["revenue"].code not in found  # 营业额 is another word
    assert published["driving"].code not in found  # 驾驶执照 is another word
    assert published["draft"].code not in found  # drafts are not searchable
    assert result.total == 2


def test_query_with_several_words_requires_all(published):
    assert codes(search.search(search.SearchQuery(text="企业 营业额"))) == [published["revenue"].code]
    assert codes(search.search(search.SearchQuery(text="驾驶证 有效期"))) == [published["driving"].code]
    assert search.search(search.SearchQuery(text="营业执照 驾驶证")).total == 0
    assert search.search(search.SearchQuery(text="完全无关的词语")).total == 0


def test_items_provider_and_code_are_searchable(published):
    assert published["licence"].code in codes(search.search(search.SearchQuery(text="统一社会信用代码")))
    assert published["driving"].code in codes(search.search(search.SearchQuery(text="公安厅")))
    assert codes(search.search(search.SearchQuery(text=published["revenue"].code))) == [published["revenue"].code]


def test_facets_count_the_result_set(published, orgs):
    result = search.search(search.SearchQuery())
    assert result.total == 4
    assert result.facets["provider"] == {str(orgs["scjg"].pk): 2, str(orgs["ga"].pk): 1, str(orgs["mz"].pk): 1}
    assert result.facets["sharing_type"] == {"unconditional": 3, "conditional": 1}
    assert result.facets["class_item"]["102"] == 2
    narrowed = search.search(search.SearchQuery(provider=orgs["scjg"].pk))
    assert narrowed.total == 2 and narrowed.facets["provider"] == {str(orgs["scjg"].pk): 2}
    filtered = search.search(search.SearchQuery(text="信息", sharing_type="conditional"))
    assert codes(filtered) == [published["driving"].code]
    assert search.search(search.SearchQuery(public_only=True)).total == 1


def test_index_follows_revisions_and_retirement(users, published, resource_data):
    licence = published["licence"]
    services.update_resource(
        licence,
        actor=users["scjg"],
        classification=licence.classification,
        data=resource_data(name="市场主体营业执照信息"),
        items=[{"registry": "t.enterprise", "registry_field": "uscc"}],
    )
    # The revision is not live yet: search still shows the published version's name.
    assert SearchEntry.objects.get(resource=licence).name == "企业营业执照信息"
    services.submit(licence, actor=users["scjg"])
    services.review(licence, actor=users["dsj"], approve=True)
    assert SearchEntry.objects.get(resource=licence).name == "市场主体营业执照信息"
    assert licence.code in codes(search.search(search.SearchQuery(text="市场主体")))
    services.retire(licence, actor=users["dsj"], reason="测试停用")
    assert licence.code not in codes(search.search(search.SearchQuery(text="营业执照")))
    docs = SearchTerm.objects.get(token=search.DOCS_KEY).df
    assert docs == SearchEntry.objects.count() == 3
    # Document frequencies equal a recount, and a full rebuild gives the same index.
    for term in SearchTerm.objects.exclude(token__in=[search.DOCS_KEY, search.GENERATION_KEY]):
        assert term.df == SearchToken.objects.filter(token=term.token).count(), term.token
    before = sorted(SearchToken.objects.values_list("token", "weight"))
    assert search.rebuild_index() == 3
    assert sorted(SearchToken.objects.values_list("token", "weight")) == before


def _shown(result):
    """Everything a reader sees of a result: entries, scores, total, facets (with their order), words."""
    return (
        [(entry.code, result.scores.get(entry.pk)) for entry in result.entries],
        result.total,
        {name: list(counts.items()) for name, counts in result.facets.items()},
        result.words,
        result.dropped,
    )


QUERIES = [
    {},
    {"text": "信息"},
    {"text": "营业执照"},
    {"text": "信息", "sharing_type": "conditional"},
    {"text": "社会组织 登记"},
    {"public_only": True},
    {"text": "信息", "page": 2, "page_size": 2},
]


def _all_shown():
    return [_shown(search.search(search.SearchQuery(**params))) for params in QUERIES]


def test_cached_results_equal_computed_results(published, settings, django_assert_max_num_queries):
    settings.CATALOG_SEARCH_CACHE_POSTINGS = None
    computed = _all_shown()
    settings.CATALOG_SEARCH_CACHE_POSTINGS = 0  # cache every query
    assert _all_shown() == computed  # first round fills the cache
    with django_assert_max_num_queries(2):  # term statistics + the page's entries: counts and ranking cached
        search.search(search.SearchQuery(text="信息"))
    assert _all_shown() == computed


def test_cache_follows_publication_and_retirement(users, published, make_entry, settings):
    settings.CATALOG_SEARCH_CACHE_POSTINGS = 0
    before = _all_shown()
    generation = search.generation()
    added = make_entry(
        users["mz"], name="社会组织年检信息", cls="102002", items=FREE, publish_by=users["dsj"], summary="年检结果。"
    )
    assert search.generation() != generation
    after = _all_shown()
    assert after != before
    browse = search.search(search.SearchQuery())
    assert browse.total == 5 and added.code in codes(browse)
    assert search.search(search.SearchQuery(text="信息")).facets["provider"][str(added.provider_id)] == 2
    settings.CATALOG_SEARCH_CACHE_POSTINGS = None
    assert _all_shown() == after  # exactly what a fresh computation gives

    settings.CATALOG_SEARCH_CACHE_POSTINGS = 0
    services.retire(added, actor=users["dsj"], reason="测试停用")
    assert added.code not in codes(search.search(search.SearchQuery()))
    assert _all_shown() == before


def test_rebuild_starts_a_new_generation(published, settings):
    settings.CATALOG_SEARCH_CACHE_POSTINGS = 0
    result = _all_shown()
    generation = search.generation()
    SearchEntry.objects.filter(resource=published["driving"]).delete()  # damage the index behind its back
    assert search.search(search.SearchQuery()).total == 4  # the cached counts do not see it …
    assert search.rebuild_index() == 4
    assert search.generation() != generation
    assert _all_shown() == result  # … and a rebuild repairs the index and starts afresh


def test_pages_rank_by_score_then_code_and_facets_recount_the_hits(users, published, make_entry):
    """Paging through a one-word query gives the full ranking; facets equal a recount of the hits."""
    for _ in range(2):  # twins: the same score, ordered by code
        make_entry(users["mz"], name="养老机构名录信息", cls="102002", items=FREE, publish_by=users["dsj"])
    hits = dict(SearchToken.objects.filter(token="信息").values_list("entry_id", "weight"))
    entries = {entry.pk: entry for entry in SearchEntry.objects.filter(pk__in=hits)}
    ranked = [entries[pk].code for pk in sorted(hits, key=lambda pk: (-hits[pk], entries[pk].code))]
    assert len(ranked) == 6 and len(set(hits.values())) < len(hits)  # some entries tie on the score
    pages = [codes(search.search(search.SearchQuery(text="信息", page=n, page_size=1))) for n in range(1, 8)]
    assert pages == [[code] for code in ranked] + [[]]
    for params in ({"text": "信息"}, {"text": "社会组织 登记"}, {"text": "信息", "open_type": "none"}, {}):
        result = search.search(search.SearchQuery(**params))
        found = search.search(search.SearchQuery(**params, page_size=100)).entries
        assert result.total == len(found)
        for name, column in (
            ("provider", "provider_id"),
            ("class_item", "class_item"),
            ("sharing_type", "sharing_type"),
            ("open_type", "open_type"),
            ("format", "format"),
        ):
            recount = Counter(str(getattr(entry, column)) for entry in found)
            assert result.facets[name] == dict(recount), name
            assert list(result.facets[name].values()) == sorted(recount.values(), reverse=True)


@pytest.mark.django_db(transaction=True)
def test_rebuild_outside_a_transaction_leaves_a_searchable_index(published):
    """A rebuild run on its own (as ``dgov catalog reindex`` does) also vacuums on PostgreSQL."""
    before = _all_shown()
    assert search.rebuild_index() == 4
    assert _all_shown() == before
    if connection.vendor == "postgresql":  # the postings are readable index-only (visibility map set)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relpages, relallvisible FROM pg_class WHERE relname = %s", [SearchToken._meta.db_table]
            )
            pages, visible = cursor.fetchone()
        assert pages > 0 and visible == pages
