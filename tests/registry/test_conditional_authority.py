"""Conditional authority (按类别确定权威来源): an event's kind decides which department is its source.

population.event holds births (卫健 WJ), deaths (WJ or 公安 GA), marriages and divorces (民政 MZ);
every shared field lists "WJ|GA|MZ", and the ``authority_by_value`` rule on ``kind`` narrows it per
record. Services, bulk creation, import, the API and the pages all refuse a write by the wrong
department (audited), and corrections by other departments become correction requests.
"""

import io
import json

import pytest
from api_fixtures import Caller, problem
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from engine_fixtures import *  # noqa: F403

from dgov.identity.services import create_api_client
from dgov.kernel.models import AuditRecord, Organization
from dgov.kernel.validators import make_uscc
from dgov.registry import io as registry_io
from dgov.registry import libraries, services
from dgov.registry.models import CorrectionRequest, Record
from dgov.registry.schema import SchemaError, parse_fields

RULES = {"birth": "WJ", "death": "WJ|GA", "marriage": "MZ", "divorce": "MZ"}
EVENT_FIELDS = [
    {"name": "document_no", "label": "证明文书编号", "type": "string", "authority": "WJ|GA|MZ"},
    {
        "name": "kind",
        "label": "事件类型",
        "type": "enum",
        "required": True,
        "authority": "WJ|GA|MZ",
        "choices": [
            {"value": "birth", "label": "出生", "label_en": "Birth"},
            {"value": "death", "label": "死亡", "label_en": "Death"},
            {"value": "marriage", "label": "结婚", "label_en": "Marriage"},
            {"value": "divorce", "label": "离婚", "label_en": "Divorce"},
        ],
        "authority_by_value": RULES,
    },
    {"name": "date", "label": "事件日期", "type": "date", "required": True, "authority": "WJ|GA|MZ"},
    {"name": "place", "label": "发生地区划", "type": "division_code", "required": True, "authority": "WJ|GA|MZ"},
    {"name": "other_party", "label": "另一方当事人", "type": "string", "authority": "MZ"},
]


def denials(action):
    """Denied audit records of an action."""
    return list(AuditRecord.objects.filter(action=action, outcome="denied").order_by("seq"))


def event(kind, number, **extra):
    """Values of one event in 历下区."""
    return {"document_no": number, "kind": kind, "date": "2024-03-01", "place": "370102", **extra}


@pytest.fixture
def events(orgs):
    """The event registry, owned by the provincial GA and scoped by ``place``."""
    return services.create_registry(
        code="test.event",
        name="人口事件",
        owner=orgs["ga"],
        library_code="population",
        identifier_field="document_no",
        scope_field="place",
        fields=EVENT_FIELDS,
        actor="system:test",
    )


@pytest.fixture
def birth(events, officials):
    """A birth recorded by the provincial health commission."""
    return services.create_record(events, event("birth", "Q1"), actor=officials["wj"])


@pytest.fixture
def marriage(events, officials):
    """A marriage recorded by the provincial civil affairs department."""
    return services.create_record(events, event("marriage", "J1", other_party="李四"), actor=officials["mz"])


# --- Definitions -------------------------------------------------------------------------------------


def test_the_rule_is_part_of_the_field_and_round_trips(events):
    (kind,) = [f for f in services.registry_fields(events) if f.name == "kind"]
    assert kind.authority_rules() == {"birth": ("WJ",), "death": ("WJ", "GA"), "marriage": ("MZ",), "divorce": ("MZ",)}
    assert kind.as_dict()["authority_by_value"] == RULES


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "date", "authority_by_value": {"birth": "WJ"}}, "只有枚举类型"),
        ({"name": "kind", "authority_by_value": {"adoption": "MZ"}}, "不是可选值"),
        ({"name": "kind", "authority_by_value": {"birth": "WJ||GA"}}, "权威来源格式"),
        ({"name": "kind", "authority_by_value": ["birth", "WJ"]}, "对象"),
    ],
)
def test_bad_rules_are_refused_when_parsed(change, message):
    fields = [dict(f) for f in EVENT_FIELDS]
    for field in fields:
        if field["name"] == change["name"]:
            field.pop("authority_by_value", None)
            field["authority_by_value"] = change["authority_by_value"]
    with pytest.raises(SchemaError, match=message):
        parse_fields(fields, identifier="document_no")


def test_only_one_field_may_carry_a_rule():
    fields = [*EVENT_FIELDS, {**EVENT_FIELDS[1], "name": "kind2"}]
    with pytest.raises(SchemaError, match="只能有一个"):
        parse_fields(fields, identifier="document_no")


def test_publishing_refuses_unknown_departments(events, orgs):
    fields = [dict(f) for f in EVENT_FIELDS]
    fields[1]["authority_by_value"] = {**RULES, "birth": "WJ|NOSUCH"}
    with pytest.raises(SchemaError, match="NOSUCH"):
        services.publish_schema_version(events, fields, actor="system:test")
    with pytest.raises(SchemaError, match="NOSUCH"):
        services.create_registry(
            code="test.event2",
            name="事件2",
            owner=orgs["ga"],
            library_code="population",
            identifier_field="document_no",
            fields=fields,
            actor="system:test",
        )
    # A department code counts as known, and so does a kind no department has yet but the platform defines.
    fields[1]["authority_by_value"] = {**RULES, "birth": "370000-WJ|YJ"}
    published = services.publish_schema_version(events, fields, actor="system:test")
    assert published.version == 2


def test_shipped_population_event_definition_carries_the_rule():
    definition = next(d for d in libraries.load_definitions() if d["code"] == "population.event")
    kind = next(f for f in definition["fields"] if f["name"] == "kind")
    assert kind["authority_by_value"] == RULES
    assert [c["label"] for c in kind["choices"]] == ["出生", "死亡", "结婚", "离婚"]


# --- Creating -----------------------------------------------------------------------------------------


def test_the_new_records_kind_decides_who_may_create_it(events, officials):
    services.create_record(events, event("birth", "Q1"), actor=officials["wj"])
    services.create_record(events, event("death", "S1"), actor=officials["ga"])
    services.create_record(events, event("death", "S2"), actor=officials["wj_lixia"])
    services.create_record(events, event("divorce", "L1"), actor=officials["mz"])
    for kind, official in (("birth", "mz"), ("birth", "ga"), ("marriage", "wj"), ("death", "mz")):
        with pytest.raises(services.NotAuthoritative) as refused:
            services.create_record(events, event(kind, f"X-{kind}-{official}"), actor=officials[official])
        assert "kind" in refused.value.fields and "document_no" in refused.value.fields
    assert Record.objects.filter(registry=events).count() == 4
    assert len(denials("registry.record.create")) == 4


def test_refusal_names_the_narrowed_source(events, officials):
    with pytest.raises(services.NotAuthoritative) as refused:
        services.create_record(events, event("birth", "Q9"), actor=officials["mz"])
    message = str(refused.value)
    assert "事件类型为“出生”的记录为 WJ" in message and "山东省民政厅" in message


def test_single_source_fields_keep_their_source(birth, officials):
    """other_party has one source (MZ): the rule narrows shared fields only."""
    services.update_record(birth, {"other_party": "—"}, actor=officials["mz"])
    with pytest.raises(services.NotAuthoritative):
        services.update_record(birth, {"other_party": "x"}, actor=officials["wj"])


def test_records_without_a_ruled_value_keep_the_fields_authority(events, officials, orgs):
    fields = [dict(f) for f in EVENT_FIELDS]
    fields[1] = {**fields[1], "required": False, "authority_by_value": {"birth": "WJ"}}
    services.publish_schema_version(events, fields, actor="system:test")
    record = services.create_record(events, event("marriage", "J7"), actor=officials["ga"])  # no rule for marriage
    assert record.pk
    assert services.can_write(events, "date", orgs["ga"], record=record)
    assert not services.can_write(events, "date", orgs["ga"], values={"kind": "birth"}, division_code="370102")


# --- Updating, changing the kind, corrections ---------------------------------------------------------


def test_updates_are_judged_by_the_records_kind(birth, marriage, officials):
    services.update_record(birth, {"date": "2024-03-02"}, actor=officials["wj_lixia"])
    services.update_record(marriage, {"date": "2024-03-03"}, actor=officials["mz"])
    with pytest.raises(services.NotAuthoritative):
        services.update_record(birth, {"date": "2024-03-04"}, actor=officials["mz"])
    with pytest.raises(services.NotAuthoritative):
        services.update_record(marriage, {"date": "2024-03-04"}, actor=officials["wj"])
    assert len(denials("registry.record.update")) == 2
    assert services.record_values_now(birth)["date"] == "2024-03-02"


def test_changing_the_kind_needs_authority_for_the_old_and_the_new_value(birth, marriage, officials):
    services.update_record(birth, {"kind": "death"}, actor=officials["wj"])  # WJ is a source of both
    assert services.record_values_now(birth)["kind"] == "death"
    with pytest.raises(services.NotAuthoritative) as refused:
        services.update_record(birth, {"kind": "marriage"}, actor=officials["wj"])
    assert refused.value.fields == ["kind"]
    with pytest.raises(services.NotAuthoritative):
        services.update_record(marriage, {"kind": "birth"}, actor=officials["mz"])
    with pytest.raises(services.NotAuthoritative):
        services.update_record(birth, {"kind": "marriage"}, actor=officials["mz"])  # death → marriage: not WJ|GA
    assert services.record_values_now(marriage)["kind"] == "marriage"


def test_a_correction_by_another_department_becomes_a_request_the_rules_source_decides(birth, officials):
    services.update_record(birth, {"date": "2024-02-28"}, actor=officials["mz"], non_authoritative="correct")
    request = CorrectionRequest.objects.get(record=birth, field="date")
    assert request.submitted_by_org.kind == "MZ"
    assert services.record_values_now(birth)["date"] == "2024-03-01"
    with pytest.raises(services.NotAuthoritative):
        services.decide_correction(request, accept=True, actor=officials["ga"])  # GA is no source of births
    assert denials("registry.correction.decide")
    services.decide_correction(request, accept=True, actor=officials["wj"])
    birth.refresh_from_db()
    assert services.record_values_now(birth)["date"] == "2024-02-28"


def test_accepting_a_change_of_kind_needs_the_new_kinds_authority_too(birth, officials):
    request = services.submit_correction(birth, "kind", "marriage", actor=officials["mz"], reason="登记错误")
    with pytest.raises(services.NotAuthoritative):
        services.decide_correction(request, accept=True, actor=officials["wj"])
    services.decide_correction(request, accept=False, actor=officials["wj"], note="出生医学证明无误")
    request.refresh_from_db()
    assert request.status == CorrectionRequest.Status.REJECTED


def test_delegations_are_narrowed_too(events, birth, marriage, officials, orgs):
    hospital = Organization.objects.create(
        name="省立医院",
        code="370000-SLYY",
        kind="YY",
        level=Organization.Level.PROVINCE,
        division=orgs["wj"].division,
        uscc=make_uscc("1", "2", "370000", serial=77),
    )
    services.delegate_field(events, "*", hospital, actor=officials["wj"])
    services.update_record(birth, {"date": "2024-03-05"}, actor=hospital)
    with pytest.raises(services.NotAuthoritative):
        services.update_record(marriage, {"date": "2024-03-05"}, actor=hospital)


def test_deleting_is_for_the_owner_or_the_kinds_source(birth, marriage, officials):
    with pytest.raises(services.NotAuthoritative):
        services.delete_record(birth, actor=officials["mz"], reason="误录")
    services.delete_record(marriage, actor=officials["mz"], reason="误录")
    services.delete_record(birth, actor=officials["ga"], reason="误录")  # the owner
    assert len(denials("registry.record.delete")) == 1


def test_can_write_and_writable_fields_follow_the_record(birth, marriage, events, orgs):
    assert services.writable_fields(events, orgs["mz"], record=birth) == ["other_party"]
    assert set(services.writable_fields(events, orgs["mz"], record=marriage)) == {
        "document_no",
        "kind",
        "date",
        "place",
        "other_party",
    }
    assert services.can_write(events, "date", orgs["wj"], record=birth)
    assert not services.can_write(events, "date", orgs["wj"], record=marriage)
    assert services.field_authority(events, services.registry_fields(events)[2], {"kind": "death"}) == (
        "WJ|GA",
        "事件类型为“死亡”",
    )


# --- Bulk creation and import -------------------------------------------------------------------------


def test_bulk_creation_checks_every_rows_kind(events, officials, orgs):
    rows = [event("marriage", "J1"), event("divorce", "L1"), event("birth", "Q1"), event("marriage", "J2")]
    with pytest.raises(services.NotAuthoritative) as refused:
        services.bulk_create_records(events, rows, actor=officials["mz"], source=None)
    assert "kind" in refused.value.fields
    assert not Record.objects.filter(registry=events).exists()
    assert denials("registry.record.bulk_create")
    created = services.bulk_create_records(events, [rows[0], rows[1], rows[3]], actor=officials["mz"], source=None)
    assert created == 3


def _csv(rows):
    text = io.StringIO()
    text.write("document_no,kind,date,place\n")
    for row in rows:
        text.write(",".join(row) + "\n")
    return io.BytesIO(text.getvalue().encode())


@pytest.mark.parametrize("dry_run", [True, False])
def test_import_reports_rows_of_kinds_the_department_is_no_source_of(events, officials, dry_run):
    rows = [("J1", "marriage", "2024-01-02", "370102"), ("Q1", "出生", "2024-01-03", "370102")]
    report = registry_io.import_file(events, _csv(rows), actor=officials["mz"], fmt="csv", dry_run=dry_run)
    assert not report.ok
    (error,) = report.errors
    assert error.line == 3 and error.field == "kind"
    assert "事件类型为“出生”" in error.message and "山东省民政厅" in error.message
    assert not Record.objects.filter(registry=events).exists()


def test_import_by_the_kinds_source_succeeds(events, officials):
    rows = [("Q1", "birth", "2024-01-02", "370102"), ("Q2", "出生", "2024-01-03", "370102")]
    report = registry_io.import_file(events, _csv(rows), actor=officials["wj"], fmt="csv")
    assert report.ok and report.imported == 2
    assert {services.record_values_now(r)["kind"] for r in Record.objects.filter(registry=events)} == {"birth"}


# --- API ----------------------------------------------------------------------------------------------

API_BASE = "/api/v1/registries/data/test.event/1"


@pytest.fixture
def event_callers(client, orgs):
    """API clients of the provincial WJ and MZ."""
    out = {}
    for key in ("wj", "mz"):
        api_client, secret = create_api_client(
            f"{key} 系统", orgs[key], ["registry:read", "registry:write"], actor="system:test", client_id=f"ev-{key}"
        )
        out[key] = Caller(client, api_client, secret)
    return out


def test_api_refuses_a_birth_by_civil_affairs_with_403_and_audits_it(events, event_callers):
    body = {"write": {"content": event("birth", "Q1")}}
    problem(event_callers["mz"].post(f"{API_BASE}/create", body), 403)
    assert denials("registry.record.create")
    assert event_callers["wj"].post(f"{API_BASE}/create", body).status_code == 200


def test_api_correction_mode_files_a_request_for_another_departments_event(birth, event_callers):
    body = {"query": {"content": {"document_no": "Q1"}}, "write": {"content": {"date": "2024-02-01"}}}
    problem(event_callers["mz"].put(f"{API_BASE}/update", body), 403)
    response = event_callers["mz"].put(f"{API_BASE}/update?non_authoritative=correct", body)
    assert response.status_code == 200, response.content
    assert CorrectionRequest.objects.filter(record=birth, field="date").exists()
    assert services.record_values_now(birth)["date"] == "2024-03-01"


def test_api_update_entries_checks_each_records_kind(birth, marriage, event_callers):
    body = {"query": {"content": {"place": "370102"}}, "write": {"content": {"date": "2024-05-05"}}}
    problem(event_callers["mz"].put(f"{API_BASE}/update-entries", body), 403)
    assert services.record_values_now(marriage)["date"] == "2024-03-01"  # all or nothing
    body["query"]["content"] = {"document_no": "J1"}
    assert event_callers["mz"].put(f"{API_BASE}/update-entries", body).status_code == 200


def test_schema_api_shows_the_rule(events, event_callers):
    response = event_callers["mz"].get("/api/v1/registries/test.event/schema")
    assert response.status_code == 200
    kind = next(f for f in response.json()["fields"] if f["name"] == "kind")
    assert kind["authority_by_value"] == RULES


# --- Pages --------------------------------------------------------------------------------------------


def test_schema_page_shows_the_rule(client, events, officials):
    client.force_login(officials["dsj"])
    response = client.get(reverse("registry:schema", kwargs={"code": "test.event"}))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="authority-rule-1"' in html
    assert "按“事件类型”确定权威来源" in html and "结婚" in html and "山东省民政厅" in html


def test_record_page_offers_edits_only_to_the_kinds_source(client, birth, officials):
    url = reverse("registry:record", kwargs={"code": "test.event", "uid": birth.uid})
    client.force_login(officials["mz"])
    response = client.get(url)
    assert response.status_code == 200
    rows = {row["field"].name: row for row in response.context["rows"]}
    assert not rows["date"]["writable"] and rows["other_party"]["writable"]
    assert rows["date"]["authority_condition"] == "事件类型为“出生”"
    assert "山东省卫生健康委员会" in rows["date"]["authority"]
    posted = client.post(
        reverse("registry:edit", kwargs={"code": "test.event", "uid": birth.uid}),
        {"v_date": "2024-01-01", "expected_version": birth.version},
    )
    assert posted.status_code == 403
    assert services.record_values_now(birth)["date"] == "2024-03-01"
    client.force_login(officials["wj"])
    rows = {row["field"].name: row for row in client.get(url).context["rows"]}
    assert rows["date"]["writable"]


def test_correction_inbox_follows_the_kind(client, birth, marriage, officials):
    services.submit_correction(birth, "date", "2024-01-01", actor=officials["tj"], reason="核对")
    services.submit_correction(marriage, "date", "2024-01-01", actor=officials["tj"], reason="核对")
    client.force_login(officials["mz"])
    pending = client.get(reverse("registry:corrections")).context["pending"]
    assert [row["req"].record_id for row in pending] == [marriage.pk]
    client.force_login(officials["wj"])
    pending = client.get(reverse("registry:corrections")).context["pending"]
    assert [row["req"].record_id for row in pending] == [birth.pk]
    request = CorrectionRequest.objects.get(record=birth)
    client.force_login(officials["mz"])
    response = client.post(reverse("registry:decide", kwargs={"pk": request.pk}), {"decision": "accept"})
    assert response.status_code == 403


def test_permission_denied_is_what_the_engine_raises(events, officials):
    with pytest.raises(PermissionDenied):
        services.create_record(events, event("birth", "Q5"), actor=officials["mz"])
    assert json.loads(denials("registry.record.create")[-1].detail_json)["department"] == "370000-MZ"
