"""Kernel API routes: administrative division lookup (行政区划查询) under /api/v1/kernel/.

GB/T 2260 codes are public standard data, so these read-only routes need no login (the demo
townships and villages are synthetic and equally public). They are meant to sit behind the API's
rate limiting like every other anonymous route; nothing here is per-user.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from pydantic import Field

from dgov.kernel.models import Division
from dgov.kernel.services import divisions

router = Router(tags=["kernel"])

MAX_RESULTS = 100


class DivisionOut(Schema):
    """A division in API answers."""

    code: str
    name: str
    full_name: str
    level: int = Field(description="1 省级, 2 地级, 3 县级, 4 乡级, 5 村级")
    level_label: str
    parent_code: str | None
    synthetic: bool = Field(description="乡、村两级为演示数据")
    placeholder: bool = Field(description="统计用汇总码（如“市辖区”），不是实际区域")
    is_current: bool


class DivisionDetailOut(DivisionOut):
    """A division with the chain above it and the divisions directly below it."""

    ancestors: list[DivisionOut]
    children: list[DivisionOut]


class DivisionQuery(Schema):
    """Search parameters."""

    q: str = Field("", max_length=50, description="名称、全称片段或代码前缀；为空时列出省级")
    level: int | None = Field(None, ge=1, le=5, description="只返回该级别")
    limit: int = Field(20, ge=1, le=MAX_RESULTS)


def _out(division: Division, parent_code: str | None = None) -> dict:
    """The DivisionOut fields of a division."""
    if parent_code is None and division.parent_id is not None:
        parent_code = division.parent.code
    return {
        "code": division.code,
        "name": division.name,
        "full_name": division.full_name or division.name,
        "level": division.level,
        "level_label": str(division.get_level_display()),
        "parent_code": parent_code,
        "synthetic": division.synthetic,
        "placeholder": division.placeholder,
        "is_current": division.is_current,
    }


@router.get("/divisions/{code}", response=DivisionDetailOut, summary="行政区划详情（含上下级）", auth=None)
def division_detail(request: HttpRequest, code: str):
    """One division by code, with its ancestors and children (placeholders looked through)."""
    division = divisions.get_division(code)
    if division is None:
        raise Http404(_("行政区划代码 %(code)s 不存在") % {"code": code[:20]})
    return {
        **_out(division),
        "ancestors": [_out(d) for d in divisions.ancestors(division)],
        "children": [
            _out(d, division.code if d.parent_id == division.pk else None) for d in divisions.children(code)
        ],
    }


@router.get("/divisions", response=list[DivisionOut], summary="查找行政区划", auth=None)
def division_search(request: HttpRequest, params: Query[DivisionQuery]):
    """Divisions matching a name fragment or code prefix; provinces when no query is given."""
    level = params.level
    if not params.q.strip() and level is None:
        level = Division.Level.PROVINCE
    found = divisions.find_divisions(params.q, level, limit=params.limit)
    return [_out(d) for d in found]
