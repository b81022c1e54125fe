"""Administrative divisions: loading GB/T 2260, demo townships and villages, lookups, API, command."""

import re
import time
from io import StringIO

import pytest
from django.core.management import call_command

from dgov.kernel.models import AuditRecord, Division
from dgov.kernel.services import divisions

pytestmark = pytest.mark.django_db

Level = Division.Level


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Tests roll their rows back; the in-process code cache must not outlive them."""
    divisions.invalidate_division_cache()
    yield
    divisions.invalidate_division_cache()


@pytest.fixture
def shandong():
    """Shandong (plus Beijing for the municipality layout) loaded from the shipped loc.dat."""
    divisions.load_divisions(provinces=["37", "11"])
    return Division.objects.get(code="370000")


SAMPLE = """\
37 province="山东省"
  0000 county="山东省"
  0100 county="济南市"
  0101 county="[1983-]市辖区"
  0102 county="[1983-]历下区"
  0103 county="[-2010]旧区"
  0811 county="[1983-1992]郊区,[1993-]任城区"
  0800 county="[1983-]济宁市"
  9000 county="[1986-]省直辖县级行政单位"
  9001 county="[1990-]示范市"
"""


def test_full_load_is_fast_complete_and_idempotent():
    started = time.perf_counter()
    result = divisions.load_divisions(actor="system:test")
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"loading GB/T 2260 took {elapsed:.1f}s"
    assert result.created > 3000 and result.updated == 0
    assert Division.objects.filter(level=Level.PROVINCE).count() == 34
    assert Division.objects.filter(level=Level.COUNTY, placeholder=False).count() > 2800
    assert not Division.objects.filter(code="110103").exists()  # 崇文区, abolished 2010
    again = divisions.load_divisions()
    assert (again.created, again.updated, again.retired) == (0, 0, 0)
    assert again.unchanged == result.created
    assert Division.objects.count() == result.created
    assert AuditRecord.objects.filter(action="kernel.division.load").count() == 2


def test_tree_shape_and_full_names(shandong):
    lixia = Division.objects.get(code="370102")
    assert lixia.full_name == "山东省济南市历下区"
    assert lixia.level == Level.COUNTY
    assert lixia.parent.code == "370100" and lixia.parent.parent == shandong
    assert Division.objects.get(code="370100").level == Level.CITY
    # Placeholders: kept, flagged, skipped in full names.
    assert Division.objects.get(code="370101").placeholder
    beijing_district = Division.objects.get(code="110101")
    assert beijing_district.full_name == "北京市东城区"
    assert beijing_district.parent.code == "110100" and beijing_district.parent.placeholder
    assert Division.objects.get(code="110100").level == Level.CITY


def test_renames_and_abolitions_from_a_custom_file():
    first = divisions.load_divisions(text=SAMPLE)
    assert first.created == 8  # province; 济南, 济宁, 省直辖 (placeholder); 市辖区, 历下区, 任城区, 示范市
    assert Division.objects.get(code="370811").name == "任城区"
    assert not Division.objects.filter(code="370103").exists()
    assert Division.objects.get(code="379001").parent.code == "379000"
    assert Division.objects.get(code="379001").full_name == "山东省示范市"
    changed = SAMPLE.replace("[1983-]历下区", "[1983-]泉城区").replace(
        '  0811 county="[1983-1992]郊区,[1993-]任城区"\n', ""
    )
    second = divisions.load_divisions(text=changed)
    assert (second.created, second.updated, second.retired) == (0, 1, 1)
    assert Division.objects.get(code="370102").full_name == "山东省济南市泉城区"
    assert Division.objects.get(code="370811").is_current is False  # kept: records may refer to it


def test_demo_subdivisions_are_deterministic_and_idempotent(shandong):
    result = divisions.generate_demo_subdivisions("370000", 7, (2, 3), (2, 4))
    counties = Division.objects.filter(code__startswith="37", level=Level.COUNTY, placeholder=False).count()
    assert 2 * counties <= result.townships <= 3 * counties
    assert result.created == result.townships + result.villages
    townships = list(Division.objects.filter(level=Level.TOWNSHIP).values_list("code", "name", "full_name"))
    villages = list(Division.objects.filter(level=Level.VILLAGE).values_list("code", "name", "parent__code"))
    assert len(townships) == result.townships and len(villages) == result.villages
    for code, name, full in townships:
        assert re.fullmatch(r"37\d{7}", code)
        suffix = int(code[6:])
        expected = "街道" if suffix < 100 else ("镇" if suffix < 200 else "乡")
        assert name.endswith(expected), (code, name)
        assert full.endswith(name) and full.startswith("山东省")
    for code, name, parent in villages:
        assert code.startswith(parent) and len(code) == 12
        assert name.endswith("社区" if int(code[9:]) < 200 else "村"), (code, name)
    assert not Division.objects.filter(level__gte=Level.TOWNSHIP, synthetic=False).exists()
    assert not Division.objects.filter(level=Level.TOWNSHIP, parent__placeholder=True).exists()
    # Same seed: nothing new. Another seed: different names on the same kind of codes.
    again = divisions.generate_demo_subdivisions("370000", 7, (2, 3), (2, 4))
    assert (again.created, again.updated) == (0, 0)
    names_before = dict((c, n) for c, n, _f in townships)
    divisions.generate_demo_subdivisions("370000", 8, (2, 3), (2, 4))
    names_after = dict(Division.objects.filter(level=Level.TOWNSHIP).values_list("code", "name"))
    assert names_after != names_before
    with pytest.raises(ValueError):
        divisions.generate_demo_subdivisions("370000", 7, (0, 3), (2, 4))


def test_lookups(shandong):
    divisions.generate_demo_subdivisions("370000", 1, (1, 1), (1, 1))
    found = divisions.find_divisions("历下")
    assert found[0].code == "370102"
    assert all("历下" in d.full_name for d in found)
    assert [d.code for d in divisions.find_divisions("济南市", Level.CITY)] == ["370100"]
    assert divisions.find_divisions("市辖区") == []
    assert len(divisions.find_divisions("市辖区", include_placeholders=True)) > 10
    assert {d.code for d in divisions.find_divisions("3701", Level.COUNTY)} >= {"370102", "370103"}
    assert divisions.get_division("370102").name == "历下区"
    assert divisions.get_division("999999") is None
    village = Division.objects.filter(code__startswith="370102", level=Level.VILLAGE).first()
    chain = divisions.ancestors(village)
    assert [d.level for d in chain] == [1, 2, 3, 4]
    assert [d.code for d in chain[:3]] == ["370000", "370100", "370102"]
    assert [d.code for d in divisions.ancestors(Division.objects.get(code="110101"))] == ["110000"]
    # Children look through placeholders.
    beijing = [d.code for d in divisions.children("110000")]
    assert "110101" in beijing and "110100" not in beijing
    jinan = [d.code for d in divisions.children("370100")]
    assert "370102" in jinan and "370101" not in jinan
    assert "370101" in [d.code for d in divisions.children("370100", include_placeholders=True)]
    assert divisions.scope_prefix("370000") == "37" and divisions.scope_prefix("370100") == "3701"
    assert divisions.full_name_of("370102") == "山东省济南市历下区"


def test_known_codes_cache_follows_loads(shandong):
    assert "370102" in divisions.known_division_codes()
    assert "440305" not in divisions.known_division_codes()
    divisions.load_divisions(provinces=["44"])
    assert "440305" in divisions.known_division_codes()


def test_api_detail_and_search(client, shandong):
    response = client.get("/api/v1/kernel/divisions/370100")
    assert response.status_code == 200
    body = response.json()
    assert body["full_name"] == "山东省济南市" and body["level"] == 2
    assert [a["code"] for a in body["ancestors"]] == ["370000"]
    children = [c["code"] for c in body["children"]]
    assert "370102" in children and "370101" not in children
    response = client.get("/api/v1/kernel/divisions", {"q": "历下"})
    assert response.status_code == 200
    assert response.json()[0]["code"] == "370102"
    provinces = client.get("/api/v1/kernel/divisions").json()
    assert {p["code"] for p in provinces} == {"110000", "370000"}
    assert client.get("/api/v1/kernel/divisions", {"level": 9}).status_code in (400, 422)


def test_api_unknown_code_is_problem_json(client, shandong):
    response = client.get("/api/v1/kernel/divisions/370199")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == 404


def test_commands(shandong):
    out = StringIO()
    call_command("divisions", "load", "--provinces", "37", stdout=out)
    assert "未变" in out.getvalue()
    out = StringIO()
    call_command("divisions", "find", "历下", stdout=out)
    assert out.getvalue().splitlines()[0].startswith("370102\t")
    out = StringIO()
    call_command("divisions", "show", "110000", stdout=out)
    assert "110101" in out.getvalue()
    out = StringIO()
    call_command(
        "divisions", "demo", "--province", "370000", "--townships", "1-1", "--villages", "1-2", stdout=out
    )
    assert Division.objects.filter(level=Level.VILLAGE).exists()
