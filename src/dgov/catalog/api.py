"""The catalogue API (资源目录接口) at /api/v1/catalog/: search with facets, entries, DCAT-AP.

=======  ===========================================  ==============================================
method   path                                         what
=======  ===========================================  ==============================================
GET      ``/resources``                               search (``q``) and filter, ranked, with facets
GET      ``/resources/{key}``                         one entry: published version, versions, conflicts
GET      ``/resources/{key}.jsonld`` / ``.ttl``       the entry as DCAT-AP JSON-LD / Turtle
GET      ``/dcat.jsonld`` / ``/dcat.ttl``             the whole published catalogue as a dcat:Catalog
GET      ``/classes``                                 the classification tree (类/项/目/细目)
=======  ===========================================  ==============================================

``{key}`` is the resource code with ``/`` written as ``-`` (``101001000-000001``); the code itself,
percent-encoded, is accepted too.

Who sees what (read-only API): officials and administrators (session or bearer token) and API
clients (HTTP Basic or client-credentials token) read every published entry. Anyone else —
anonymous callers, citizens and enterprises — reads only published entries that are open to the
public (开放属性 无条件开放 or 有条件开放): the open-data part of the catalogue that harvesters need.
Working copies (drafts, submissions, retired entries) are returned only to the provider's officials
and the covering data administrators; to everyone else such an entry does not exist (404). Errors
are problem+json.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from dgov.api.auth import bearer_auth, client_auth, session_auth
from dgov.catalog import dcat, search, services
from dgov.catalog.models import InformationResource, OpenType, ResourceClass, SearchEntry, SharingType
from dgov.kernel.models import Organization
from dgov.quality import services as quality_services


class _Anonymous:
    """The principal of a request without credentials (reads the public part of the catalogue)."""

    is_authenticated = False


ANONYMOUS = _Anonymous()


def anyone(request: HttpRequest):
    """Last auth class: a request without credentials goes through as :data:`ANONYMOUS`.

    A request that presented an ``Authorization`` header which no class accepted is refused (401):
    a misconfigured client must not silently read the public subset instead.
    """
    if request.headers.get("Authorization"):
        return None
    return ANONYMOUS


router = Router(tags=["catalog"], auth=[client_auth, bearer_auth, session_auth, anyone])

MAX_PAGE_SIZE = 100


# --- Schemas -------------------------------------------------------------------------------------------


class SearchParams(Schema):
    """Query parameters of the search."""

    q: str = Field("", max_length=100, description="检索词（中文分词）")
    provider: str = Field("", max_length=32, description="提供部门编码，如 370000-GAT")
    class_item: str = Field("", max_length=3, pattern=r"^(\d{3})?$", description="分类“项”代码，如 101")
    category: str = Field("", max_length=12, description="base / theme / department")
    sharing_type: str = Field("", max_length=16, description="unconditional / conditional / none")
    open_type: str = Field("", max_length=16)
    format: str = Field("", max_length=16)
    page: int = Field(1, ge=1, le=10000)
    page_size: int = Field(20, ge=1, le=MAX_PAGE_SIZE)


class FacetValue(Schema):
    """One value of a facet and how many results have it."""

    value: str
    label: str
    count: int


class Hit(Schema):
    """One search result."""

    code: str
    key: str
    name: str
    provider: str
    provider_name: str
    class_item: str
    sharing_type: str
    open_type: str
    format: str
    published_at: str
    score: float | None = None
    url: str


class SearchOut(Schema):
    """A page of results with the facet counts of the whole result set."""

    count: int
    page: int
    pages: int
    words: list[str]
    results: list[Hit]
    facets: dict[str, list[FacetValue]]


class VersionOut(Schema):
    """One published version."""

    number: int
    published_at: str
    published_by: str
    note: str


class EntryOut(Schema):
    """An entry: its published version (or the working copy for those who may see it) and bookkeeping."""

    code: str
    key: str
    status: str
    version: int
    published: dict[str, Any] | None
    working_copy: dict[str, Any] | None = None
    versions: list[VersionOut]
    conflicts: list[dict[str, Any]] | None = None
    quality_score: float | None
    quality: dict[str, Any] | None = None
    links: dict[str, str]


class ClassOut(Schema):
    """A classification node."""

    code: str
    name: str
    level: int
    category: str
    parent: str | None


# --- Helpers -------------------------------------------------------------------------------------------


def _principal(request: HttpRequest):
    """The authenticated principal, or None for anonymous callers."""
    auth = getattr(request, "auth", None)
    return None if auth is ANONYMOUS else auth


def _full_reader(request: HttpRequest) -> bool:
    """Whether the caller reads every published entry (officials, administrators, API clients)."""
    principal = _principal(request)
    return principal is not None and services.can_read_published(principal)


def _public(snapshot: dict) -> bool:
    """Whether a published snapshot belongs to the public part of the catalogue."""
    return snapshot.get("open_type") in search.PUBLIC_OPEN_TYPES


def _resource(key: str) -> InformationResource:
    """The entry with this key (or code), or 404."""
    code = key if "/" in key else key.replace("-", "/", 1)
    resource = services.find_resource(code)
    if resource is None:
        raise HttpError(404, gettext("信息资源不存在。"))
    return resource


def _readable_snapshot(request: HttpRequest, resource: InformationResource) -> dict | None:
    """The published snapshot the caller may read, or None."""
    if resource.published_version_id is None or resource.status == InformationResource.Status.RETIRED:
        return None
    snapshot = resource.published_version.snapshot
    if _full_reader(request) or _public(snapshot):
        return snapshot
    return None


def _published_or_404(request: HttpRequest, key: str) -> tuple[InformationResource, dict]:
    """An entry whose published version the caller may read, or 404 (existence is not disclosed)."""
    resource = _resource(key)
    snapshot = _readable_snapshot(request, resource)
    if snapshot is None:
        raise HttpError(404, gettext("信息资源不存在。"))
    return resource, snapshot


def _labels() -> dict[str, dict[str, str]]:
    """Labels of the facet values that are choices."""
    return {
        "sharing_type": {k: str(v) for k, v in SharingType.choices},
        "open_type": {k: str(v) for k, v in OpenType.choices},
        "format": {k: str(v) for k, v in InformationResource.Format.choices},
    }


def _facets(result: search.SearchResult) -> dict[str, list[dict]]:
    """Facet counts with readable labels; providers by department code."""
    labels = _labels()
    provider_ids = [int(v) for v in result.facets.get("provider", {})]
    orgs = {str(o.pk): o for o in Organization.objects.filter(pk__in=provider_ids)}
    classes = dict(
        ResourceClass.objects.filter(code__in=list(result.facets.get("class_item", {}))).values_list("code", "name")
    )
    out: dict[str, list[dict]] = {}
    for name, counts in result.facets.items():
        values = []
        for value, count in counts.items():
            if name == "provider":
                org = orgs.get(value)
                values.append(
                    {"value": org.code if org else value, "label": org.name if org else value, "count": count}
                )
            elif name == "class_item":
                values.append({"value": value, "label": classes.get(value, value), "count": count})
            else:
                values.append({"value": value, "label": labels.get(name, {}).get(value, value), "count": count})
        out[name] = values
    return out


def _hit(request: HttpRequest, entry: SearchEntry, score: float | None) -> dict:
    """A search result row."""
    key = dcat.resource_key(entry.code)
    return {
        "code": entry.code,
        "key": key,
        "name": entry.name,
        "provider": entry.provider.code,
        "provider_name": entry.provider.name,
        "class_item": entry.class_item,
        "sharing_type": entry.sharing_type,
        "open_type": entry.open_type,
        "format": entry.format,
        "published_at": entry.published_at.isoformat(),
        "score": round(score, 4) if score is not None else None,
        "url": request.build_absolute_uri(f"/api/v1/catalog/resources/{key}"),
    }


def _rdf_response(text: str, content_type: str) -> HttpResponse:
    """An RDF document answer."""
    return HttpResponse(text, content_type=f"{content_type}; charset=utf-8")


# --- Routes --------------------------------------------------------------------------------------------


@router.get("/resources", response=SearchOut, summary="检索信息资源目录")
def search_resources(request: HttpRequest, params: Query[SearchParams]):
    """Ranked Chinese search over published entries, with facets by department, class, sharing, open, format."""
    provider_id = None
    if params.provider:
        provider_id = Organization.objects.filter(code=params.provider).values_list("pk", flat=True).first()
        if provider_id is None:
            return {"count": 0, "page": params.page, "pages": 1, "words": [], "results": [], "facets": {}}
    for name, choices in (
        ("sharing_type", SharingType.values),
        ("open_type", OpenType.values),
        ("format", InformationResource.Format.values),
        ("category", ResourceClass.Category.values),
    ):
        value = getattr(params, name)
        if value and value not in choices:
            raise HttpError(400, gettext("参数 %(name)s 的取值无效：%(value)s") % {"name": name, "value": value})
    query = search.SearchQuery(
        text=params.q,
        provider=provider_id,
        class_item=params.class_item,
        category=params.category,
        sharing_type=params.sharing_type,
        open_type=params.open_type,
        format=params.format,
        public_only=not _full_reader(request),
        page=params.page,
        page_size=params.page_size,
    )
    result = search.search(query)
    return {
        "count": result.total,
        "page": result.page,
        "pages": result.pages,
        "words": result.words,
        "results": [_hit(request, e, result.scores.get(e.pk)) for e in result.entries],
        "facets": _facets(result),
    }


@router.get("/resources/{key}.jsonld", summary="信息资源的 DCAT-AP（JSON-LD）")
def resource_jsonld(request: HttpRequest, key: str):
    """The published entry as a dcat:Dataset in JSON-LD."""
    resource, snapshot = _published_or_404(request, key)
    node = dcat.dataset_node(snapshot, quality_score=resource.quality_score)
    return _rdf_response(dcat.to_jsonld(node), "application/ld+json")


@router.get("/resources/{key}.ttl", summary="信息资源的 DCAT-AP（Turtle）")
def resource_turtle(request: HttpRequest, key: str):
    """The published entry as a dcat:Dataset in Turtle."""
    resource, snapshot = _published_or_404(request, key)
    node = dcat.dataset_node(snapshot, quality_score=resource.quality_score)
    return _rdf_response(dcat.to_turtle(node), "text/turtle")


@router.get("/resources/{key}", response=EntryOut, summary="信息资源详情")
def resource_detail(request: HttpRequest, key: str):
    """An entry's published version and versions; its working copy and conflicts for those who may see them."""
    resource = _resource(key)
    principal = _principal(request)
    snapshot = _readable_snapshot(request, resource)
    insider = principal is not None and services.can_view(principal, resource)
    if snapshot is None and not insider:
        raise HttpError(404, gettext("信息资源不存在。"))
    working = None
    if insider and resource.status != InformationResource.Status.PUBLISHED:
        working = services.snapshot(resource, version=resource.version, published_at=resource.updated_at)
    full = _full_reader(request)
    versions = resource.versions.order_by("-number") if snapshot is not None or insider else []
    api_key = dcat.resource_key(resource.code)
    return {
        "code": resource.code,
        "key": api_key,
        "status": resource.status,
        "version": resource.version,
        "published": snapshot,
        "working_copy": working,
        "versions": [
            {
                "number": v.number,
                "published_at": v.published_at.isoformat(),
                "published_by": v.published_by if full else "",
                "note": v.note if full else "",
            }
            for v in versions
        ],
        "conflicts": [c.as_dict() for c in services.conflicts_for(resource)] if full else None,
        "quality_score": float(resource.quality_score) if resource.quality_score is not None else None,
        "quality": _quality(resource) if snapshot is not None else None,
        "links": {
            "jsonld": request.build_absolute_uri(f"/api/v1/catalog/resources/{api_key}.jsonld"),
            "turtle": request.build_absolute_uri(f"/api/v1/catalog/resources/{api_key}.ttl"),
        },
    }


def _quality(resource: InformationResource) -> dict | None:
    """The data-quality badge of a published entry: {score, grade, evaluated_at}, or None when not scored."""
    found = quality_services.resource_scores([resource]).get(resource.pk)
    if found is None:
        return None
    return {
        "score": float(found["score"]),
        "grade": found["grade"],
        "evaluated_at": found["finished_at"].isoformat() if found["finished_at"] else None,
    }


def _catalog_nodes(request: HttpRequest) -> list[dict]:
    """The dataset nodes of every published entry the caller may read."""
    nodes = []
    for resource in services.visible_resources().order_by("code"):
        snapshot = resource.published_version.snapshot
        if _full_reader(request) or _public(snapshot):
            nodes.append(dcat.dataset_node(snapshot, quality_score=resource.quality_score))
    return nodes


@router.get("/dcat.jsonld", summary="整个目录的 DCAT-AP（JSON-LD）")
def catalog_jsonld(request: HttpRequest):
    """The published catalogue as a dcat:Catalog in JSON-LD."""
    return _rdf_response(dcat.to_jsonld(dcat.catalog_document(_catalog_nodes(request))), "application/ld+json")


@router.get("/dcat.ttl", summary="整个目录的 DCAT-AP（Turtle）")
def catalog_turtle(request: HttpRequest):
    """The published catalogue as a dcat:Catalog in Turtle."""
    return _rdf_response(dcat.to_turtle(dcat.catalog_document(_catalog_nodes(request))), "text/turtle")


@router.get("/classes", response=list[ClassOut], summary="资源分类")
def classes(request: HttpRequest):
    """The active classification nodes (类/项/目/细目) in code order."""
    nodes = ResourceClass.objects.filter(is_active=True).select_related("parent").order_by("code")
    return [
        {
            "code": n.code,
            "name": n.name,
            "level": n.level,
            "category": n.category,
            "parent": n.parent.code if n.parent_id else None,
        }
        for n in nodes
    ]
