"""Enum choices with labels: codes are stored and served by the data API, labels are shown on pages.

A choice is a bare code (``"1"``) or ``{"value": "1", "label": "男", "label_en": "Male"}``. Imports
also accept the exact Chinese label; the API and the services accept codes only. Schemas written
with bare strings (every version published before labels existed) still load.
"""

import io

import pytest
from api_fixtures import Caller
from django.urls import reverse
from engine_fixtures import *  # noqa: F403
from engine_fixtures import pid

from dgov.identity.services import create_api_client
from dgov.registry import io as registry_io
from dgov.registry import libraries, services
from dgov.registry.models import Record
from dgov.registry.schema import (
    RecordValidationError,
    SchemaError,
    clean_values,
    compile_cleaner,
    fields_to_dicts,
    parse_fields,
)

SEX = {
    "name": "sex",
    "label": "性别",
    "label_en": "Sex",
    "type": "enum",
    "authority": "GA",
    "choices": [
        {"value": "1", "label": "男", "label_en": "Male"},
        {"value": "2", "label": "女", "label_en": "Female"},
        "9",
    ],
}
FIELDS = [
    {
        "name": "id_number",
        "label": "居民身份证号码",
        "type": "resident_id",
        "sensitivity": "personal",
        "authority": "GA",
    },
    {"name": "name", "label": "姓名", "type": "string", "sensitivity": "internal", "authority": "GA"},
    SEX,
    {"name": "division", "label": "户籍地", "type": "division_code", "authority": "GA", "required": True},
    {
        "name": "marital_status",
        "label": "婚姻状况",
        "type": "enum",
        "authority": "MZ",
        "choices": [{"value": "10", "label": "未婚"}, {"value": "20", "label": "已婚"}],
    },
]


@pytest.fixture
def people_registry(orgs):
    """A person registry with labelled enum choices."""
    return services.create_registry(
        code="labels.person",
        name="人口",
        owner=orgs["ga"],
        library_code="population",
        identifier_field="id_number",
        scope_field="division",
        fields=FIELDS,
        actor="system:test",
    )


@pytest.fixture
def zhang(people_registry, officials):
    """A man of 历下区."""
    return services.create_record(
        people_registry,
        {"id_number": pid(1), "name": "张三", "sex": "1", "division": "370102"},
        actor=officials["ga_lixia"],
    )


# --- Schema ---------------------------------------------------------------------------------------------


def test_labelled_and_bare_choices_parse_and_round_trip():
    (sex,) = parse_fields([SEX])
    assert sex.choices == ("1", "2", "9")
    assert sex.choice_label("1") == "男" and sex.choice_label("9") == "9" and sex.choice_label("x") == "x"
    assert fields_to_dicts([sex])[0]["choices"] == SEX["choices"]
    assert parse_fields(fields_to_dicts([sex])) == [sex]
    (bare,) = parse_fields([{"name": "e", "label": "e", "type": "enum", "choices": ["a", "b"]}])
    assert bare.choice_labels == () and fields_to_dicts([bare])[0]["choices"] == ["a", "b"]


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ([{"value": "1"}], "缺少中文名称"),
        ([{"value": "", "label": "男"}], "value"),
        ([{"value": "1", "label": "男", "colour": "blue"}], "未知的定义项"),
        ([{"value": "1", "label": "男"}, {"value": "2", "label": "男"}], "中文名称有重复"),
        ([{"value": "1", "label": "2"}, "2"], "另一可选值的代码"),
        ([{"value": "1", "label": "男"}, "1"], "重复"),
        ([1, 2], "choices"),
        ("12", "choices"),
    ],
)
def test_bad_choices_are_refused(choices, message):
    with pytest.raises(SchemaError, match=message):
        parse_fields([{"name": "e", "label": "e", "type": "enum", "choices": choices}])


def test_values_are_codes_and_labels_are_accepted_only_when_importing():
    fields = parse_fields([SEX])
    assert clean_values(fields, {"sex": "1"}) == {"sex": "1"}
    with pytest.raises(RecordValidationError) as refused:
        clean_values(fields, {"sex": "男"})
    assert "1 男、2 女、9" in str(refused.value)
    importing = compile_cleaner(tuple(fields), accept_labels=True)
    assert importing({"sex": "男"}, False) == {"sex": "1"}
    assert importing({"sex": " 2 "}, False) == {"sex": "2"}
    with pytest.raises(RecordValidationError):
        importing({"sex": "Male"}, False)  # only the exact Chinese label


def test_versions_published_with_bare_choices_still_load_and_may_gain_labels(people_registry, officials):
    old_fields = [dict(f) for f in FIELDS]
    old_fields[2] = {**SEX, "choices": ["1", "2", "9"]}
    registry = services.create_registry(
        code="labels.old",
        name="旧版",
        owner=people_registry.owner,
        library_code="population",
        identifier_field="id_number",
        fields=old_fields,
        actor="system:test",
    )
    record = services.create_record(
        registry, {"id_number": pid(2), "sex": "2", "division": "370102"}, actor=officials["ga"]
    )
    services.publish_schema_version(registry, FIELDS, actor="system:test", note="加上名称")
    assert services.registry_fields(registry, 1)[2].choice_labels == ()
    assert services.registry_fields(registry)[2].choice_label("2") == "女"
    assert services.record_values_now(record)["sex"] == "2"


def test_shipped_libraries_use_labels():
    by_code = {d["code"]: d for d in libraries.load_definitions()}
    sex = next(f for f in by_code["population.person"]["fields"] if f["name"] == "sex")
    assert sex["choices"] == [
        {"value": "1", "label": "男", "label_en": "Male"},
        {"value": "2", "label": "女", "label_en": "Female"},
    ]
    for definition in by_code.values():
        for field in parse_fields(definition["fields"], identifier=definition["identifier_field"]):
            if field.type == "enum":
                assert all(label and label_en for label, label_en in field.choice_labels), field.name


# --- Services and import ----------------------------------------------------------------------------------


def test_services_store_codes_and_refuse_labels(people_registry, officials):
    with pytest.raises(RecordValidationError):
        services.create_record(
            people_registry, {"id_number": pid(3), "sex": "男", "division": "370102"}, actor=officials["ga"]
        )
    record = services.create_record(
        people_registry, {"id_number": pid(3), "sex": "1", "division": "370102"}, actor=officials["ga"]
    )
    assert record.data["sex"] == "1"


def test_import_accepts_codes_and_exact_chinese_labels(people_registry, officials):
    text = "id_number,name,sex,division\n" + "\n".join(
        [f"{pid(11)},张三,男,370102", f"{pid(12)},李四,2,370102", f"{pid(13)},王五,女性,370102"]
    )
    report = registry_io.import_file(
        people_registry, io.BytesIO(text.encode()), actor=officials["ga"], fmt="csv", dry_run=True
    )
    assert [(e.line, e.field) for e in report.errors] == [(4, "sex")]
    assert "1 男" in report.errors[0].message
    text = text.rsplit("\n", 1)[0]
    report = registry_io.import_file(people_registry, io.BytesIO(text.encode()), actor=officials["ga"], fmt="csv")
    assert report.ok and report.imported == 2
    assert sorted(r.data["sex"] for r in Record.objects.filter(registry=people_registry)) == ["1", "2"]


# --- API -------------------------------------------------------------------------------------------------


@pytest.fixture
def ga_caller(client, orgs):
    """An API client of the provincial GA."""
    api_client, secret = create_api_client(
        "公安系统", orgs["ga"], ["registry:read", "registry:write"], actor="system:test", client_id="labels-ga"
    )
    return Caller(client, api_client, secret)


def test_schema_api_returns_labels_and_data_api_codes(zhang, ga_caller):
    schema = ga_caller.get("/api/v1/registries/labels.person/schema").json()
    sex = next(f for f in schema["fields"] if f["name"] == "sex")
    assert sex["choices"][0] == {"value": "1", "label": "男", "label_en": "Male"}
    record = ga_caller.get(f"/api/v1/registries/data/labels.person/1/{zhang.uid}").json()
    assert record["content"]["sex"] == "1"
    response = ga_caller.post(
        "/api/v1/registries/data/labels.person/1/create",
        {"write": {"content": {"id_number": pid(5), "sex": "女", "division": "370102"}}},
    )
    assert response.status_code in (400, 422)


# --- Pages -----------------------------------------------------------------------------------------------


def test_pages_show_labels(client, zhang, officials, people_registry):
    services.update_record(zhang, {"sex": "2"}, actor=officials["ga"])
    services.submit_correction(zhang, "marital_status", "20", actor=officials["ga"], reason="已登记结婚")
    client.force_login(officials["ga"])
    browse = client.get(reverse("registry:browse", kwargs={"code": "labels.person"}), {"f_sex": "2"})
    assert browse.status_code == 200
    assert [row["cells"][2] for row in browse.context["rows"]] == ["女"]
    assert '<option value="2" selected>女</option>' in browse.content.decode()
    page = client.get(reverse("registry:record", kwargs={"code": "labels.person", "uid": zhang.uid}))
    rows = {row["field"].name: row for row in page.context["rows"]}
    assert rows["sex"]["value"] == "女"
    changes = page.context["history"][0]["changes"]
    assert changes == [{"label": "性别", "old": "男", "new": "女"}]
    assert page.context["corrections"][0]["value"] == "已婚"
    assert '<option value="2" selected>女</option>' in page.content.decode()  # the edit form
    client.force_login(officials["mz"])
    inbox = client.get(reverse("registry:corrections"))
    assert inbox.context["pending"][0]["proposed"] == "已婚"
    form = client.get(reverse("registry:correct", kwargs={"code": "labels.person", "uid": zhang.uid}), {"field": "sex"})
    assert '<option value="1">男</option>' in form.content.decode()


def test_pages_in_english_show_english_labels(client, zhang, officials, settings):
    client.force_login(officials["ga"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = client.get(reverse("registry:record", kwargs={"code": "labels.person", "uid": zhang.uid}))
    rows = {row["field"].name: row for row in page.context["rows"]}
    assert rows["sex"]["value"] == "Male"
    browse = client.get(reverse("registry:browse", kwargs={"code": "labels.person"})).content.decode()
    assert '<option value="1">Male</option>' in browse
    assert '<option value="10">未婚</option>' in browse  # no English label: the Chinese one


def test_schema_editor_accepts_labelled_choices(client, people_registry, officials):
    client.force_login(officials["ga"])  # the owner department
    url = reverse("registry:schema", kwargs={"code": "labels.person"})
    base = {"name": "blood_type", "label": "血型", "type": "enum", "sensitivity": "internal", "authority": "WJ"}
    bad = client.post(url, {**base, "choices": "A|A型|Type A|extra"})
    assert bad.status_code == 400
    assert "格式不对" in bad.content.decode()
    response = client.post(url, {**base, "choices": "A|A型|Type A\nB|B型\nO"})
    assert response.status_code == 302
    field = {f.name: f for f in services.registry_fields(services.get_registry("labels.person"))}["blood_type"]
    assert field.choices == ("A", "B", "O")
    assert field.choice_labels == (("A型", "Type A"), ("B型", ""), ("", ""))
    html = client.get(url).content.decode()
    assert 'data-testid="choices-sex"' in html and "1 男、2 女、9" in html
