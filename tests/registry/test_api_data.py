"""The GovStack Digital Registries Data API at /api/v1/registries/: every endpoint, auth, scope and errors."""

from urllib.parse import quote

import pytest
from api_fixtures import *  # noqa: F403
from api_fixtures import BASE, REGISTRY, pid, problem

from dgov.kernel.models import AuditRecord
from dgov.registry import services
from dgov.registry.models import AccessLog, CorrectionRequest, Observation, Record

pytestmark = pytest.mark.django_db


# --- Catalogue and schema ------------------------------------------------------------------------


def test_list_registries_only_readable(callers, registry):
    body = callers["ga"].get("/api/v1/registries/").json()
    assert [r["code"] for r in body] == [REGISTRY]
    assert body[0]["version"] == 1
    assert body[0]["owner"] == "370000-GA"
    assert body[0]["data_url"].endswith(f"/api/v1/registries/data/{REGISTRY}/1")
    assert callers["dsj"].get("/api/v1/registries/").json()[0]["code"] == REGISTRY
    assert callers["scjg"].get("/api/v1/registries/").json() == []


def test_schema_and_versions(callers, registry):
    extra = {"name": "blood_type", "label": "血型", "type": "string", "authority": "WJ"}
    services.publish_schema_version(registry, [*registry.current_schema.fields, extra], actor="system:test")
    body = callers["ga"].get(f"/api/v1/registries/{REGISTRY}/schema").json()
    assert body["version"] == body["current_version"] == 2
    assert "blood_type" in [f["name"] for f in body["fields"]]
    assert [v["version"] for v in body["versions"]] == [1, 2]
    old = callers["ga"].get(f"/api/v1/registries/{REGISTRY}/schema?version=1").json()
    assert "blood_type" not in [f["name"] for f in old["fields"]]
    problem(callers["ga"].get(f"/api/v1/registries/{REGISTRY}/schema?version=9"), 404)
    problem(callers["ga"].get("/api/v1/registries/no.such/schema"), 404)
    problem(callers["scjg"].get(f"/api/v1/registries/{REGISTRY}/schema"), 403)


def test_reads_at_an_old_version_show_that_versions_fields(callers, registry, people):
    services.publish_schema_version(
        registry,
        [*registry.current_schema.fields, {"name": "blood_type", "label": "血型", "type": "string", "authority": "GA"}],
        actor="system:test",
    )
    registry.refresh_from_db()
    services.update_record(people[0], {"blood_type": "A"}, actor="system:test", source=registry.owner)
    v1 = callers["ga"].get(f"{BASE}/{people[0].uid}").json()
    v2 = callers["ga"].get(f"/api/v1/registries/data/{REGISTRY}/2/{people[0].uid}").json()
    assert "blood_type" not in v1["content"]
    assert v2["content"]["blood_type"] == "A"
    # A write at the old version is validated against the current one.
    response = callers["ga"].put(f"{BASE}/update", {"query": {"content": {"id_number": pid(11)}},
                                                    "write": {"content": {"blood_type": "B"}}})
    assert response.status_code == 200, response.content


# --- list ----------------------------------------------------------------------------------------


def test_list_pages_masks_and_logs(callers, people):
    response = callers["ga"].get(f"{BASE}?page_size=2", HTTP_X_PURPOSE=quote("户籍核查"))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert body["previous"] is None
    assert "page=2" in body["next"] and body["next"].startswith("http://testserver/")
    assert len(body["results"]) == 2
    first = body["results"][0]
    assert first["uuid"] == str(people[0].uid)
    assert first["content"]["name"] == "张*"
    assert first["content"]["id_number"] != pid(11) and first["content"]["id_number"].endswith(pid(11)[-4:])
    assert first["content"]["sex"] == "男"
    assert first["schemaVersion"] == 1 and first["version"] == 1
    logs = list(AccessLog.objects.order_by("id"))
    assert [log.record_id for log in logs] == [people[0].pk, people[1].pk]
    assert {log.purpose for log in logs} == {"户籍核查"}
    assert {log.channel for log in logs} == {"api"}
    assert {log.reader for log in logs} == {"client:ga"}
    page2 = callers["ga"].get(body["next"]).json()
    assert [r["uuid"] for r in page2["results"]] == [str(people[2].uid)]
    assert page2["next"] is None and "page=1" in page2["previous"]


def test_list_unmask_scope(callers, people):
    body = callers["ga_unmask"].get(f"{BASE}?pageSize=1").json()
    assert body["results"][0]["content"]["name"] == "张三"
    assert body["results"][0]["content"]["id_number"] == pid(11)


def test_list_filters_search_and_ordering(callers, people):
    ga = callers["ga"]
    assert ga.get(f"{BASE}?query.sex=女").json()["count"] == 1
    assert ga.get(f"{BASE}?query.birth_date__gte=1980-01-01").json()["count"] == 2
    assert ga.get(f"{BASE}?query.id_number={pid(33)}").json()["results"][0]["uuid"] == str(people[2].uid)
    assert ga.get(f"{BASE}?filter=note&search=乙").json()["count"] == 1
    assert ga.get(f"{BASE}?search=甲").json()["count"] == 1
    ordered = ga.get(f"{BASE}?ordering=-birth_date").json()["results"]
    assert [r["uuid"] for r in ordered] == [str(p.uid) for p in (people[0], people[1], people[2])]
    ordered = ga.get(f"{BASE}?ordering=birth_date").json()["results"]
    assert [r["uuid"] for r in ordered][0] == str(people[2].uid)
    assert ga.get(f"{BASE}?ordering=descending").json()["results"][0]["uuid"] == str(people[2].uid)


@pytest.mark.parametrize(
    "query",
    [
        "query.nope=1",
        "query.name=张三",  # personal, not a key: only encrypted, cannot be searched
        "query.sex__regex=男",
        "filter=name&search=张",
        "ordering=name",
        "ordering=nope",
        "query.birth_date=not-a-date",
        "page=0",
        "page_size=1000",
    ],
)
def test_list_bad_parameters_are_4xx_problems(callers, people, query):
    response = callers["ga"].get(f"{BASE}?{query}")
    assert 400 <= response.status_code < 500, response.content
    assert response["Content-Type"].startswith("application/problem+json")


def test_list_county_department_sees_its_county_only(callers, people):
    body = callers["lixia"].get(BASE).json()
    assert body["count"] == 2
    assert {r["uuid"] for r in body["results"]} == {str(people[0].uid), str(people[2].uid)}
    assert callers["dsj"].get(BASE).json()["count"] == 3


def test_list_refused_for_department_without_rights(callers, people):
    problem(callers["scjg"].get(BASE), 403)
    assert not AccessLog.objects.exists()


# --- create ----------------------------------------------------------------------------------------


def test_create(callers, registry):
    body = {"write": {"content": {"id_number": pid(44), "name": "赵六", "sex": "男", "division": "370102"}}}
    response = callers["ga"].post(f"{BASE}/create", body)
    assert response.status_code == 200, response.content
    out = response.json()
    assert out["created"] is True
    assert out["content"]["name"] == "赵*"
    assert out["content"]["sex"] == "男"
    record = Record.objects.get(uid=out["uuid"])
    assert services.record_values(record)["name"] == "赵六"
    assert not AccessLog.objects.exists()  # a write's echo is not a read
    audit = AuditRecord.objects.get(action="registry.record.create")
    assert (audit.actor_kind, audit.actor_id) == ("client", "ga")


def test_create_duplicate_identifier_is_409(callers, people):
    body = {"write": {"content": {"id_number": pid(11), "name": "重复", "division": "370102"}}}
    problem(callers["ga"].post(f"{BASE}/create", body), 409)


def test_create_invalid_values_is_400_naming_fields(callers, registry):
    body = {"write": {"content": {"id_number": "370102199001010000", "sex": "未知", "division": "370102"}}}
    out = problem(callers["ga"].post(f"{BASE}/create", body), 400)
    fields = {tuple(e["loc"]) for e in out["errors"]}
    assert {("id_number",), ("sex",), ("name",)} <= fields
    assert not Record.objects.exists()


def test_create_by_non_authoritative_department_is_403_and_audited(callers, registry):
    body = {"write": {"content": {"id_number": pid(44), "name": "赵六", "division": "370102"}}}
    out = problem(callers["wj"].post(f"{BASE}/create", body), 403)
    assert "姓名" in out["detail"]
    assert not Record.objects.exists()
    denied = AuditRecord.objects.get(action="registry.record.create", outcome="denied")
    assert (denied.actor_kind, denied.actor_id) == ("client", "wj")


def test_write_needs_write_scope(callers, registry):
    body = {"write": {"content": {"id_number": pid(44), "name": "赵六", "division": "370102"}}}
    out = problem(callers["ga_ro"].post(f"{BASE}/create", body), 403)
    assert "registry:write" in out["detail"]


# --- exists / read ---------------------------------------------------------------------------------


def test_exists(callers, people):
    yes = callers["ga"].post(f"{BASE}/exists", {"query": {"content": {"id_number": pid(11), "sex": "男"}}})
    assert yes.status_code == 200
    assert yes.json()["answer"]["status"] is True
    log = AccessLog.objects.get()
    assert log.record_id == people[0].pk and sorted(log.fields) == ["id_number", "sex"]
    no = callers["ga"].post(f"{BASE}/exists", {"query": {"content": {"id_number": pid(11), "sex": "女"}}})
    assert no.json()["answer"] == {"status": False, "message": no.json()["answer"]["message"]}
    assert no.json()["answer"]["message"]
    by_public = callers["ga"].post(f"{BASE}/exists", {"query": {"content": {"note": "乙"}}})
    assert by_public.json()["answer"]["status"] is True


def test_exists_hides_records_of_other_counties(callers, people):
    other = callers["lixia"].post(f"{BASE}/exists", {"query": {"content": {"id_number": pid(22, "370103")}}})
    assert other.json()["answer"]["status"] is False
    own = callers["lixia"].post(f"{BASE}/exists", {"query": {"content": {"id_number": pid(11)}}})
    assert own.json()["answer"]["status"] is True


def test_read(callers, people):
    response = callers["ga"].post(f"{BASE}/read", {"query": {"content": {"id_number": pid(11)}}},
                                  HTTP_X_PURPOSE="check")
    assert response.status_code == 200
    body = response.json()
    assert body["uuid"] == str(people[0].uid)
    assert body["content"]["name"] == "张*"
    assert body["content"]["phone"] != "13800000001"
    log = AccessLog.objects.get()
    assert log.purpose == "check"
    assert "name" in log.fields


def test_read_by_lookup_field_and_unmasked(callers, people):
    body = callers["ga_unmask"].post(f"{BASE}/read", {"query": {"content": {"phone": "13800000002"}}}).json()
    assert body["content"]["name"] == "李四"
    assert "<unmasked>" in AccessLog.objects.get().fields


def test_read_not_found_and_ambiguous(callers, people):
    problem(callers["ga"].post(f"{BASE}/read", {"query": {"content": {"id_number": pid(99)}}}), 404)
    problem(callers["ga"].post(f"{BASE}/read", {"query": {"content": {"sex": "男"}}}), 400)
    problem(callers["ga"].post(f"{BASE}/read", {"query": {"content": {}}}), 400)
    problem(callers["ga"].post(f"{BASE}/read", {"query": {"content": {"address": "x"}}}), 400)
    assert not AccessLog.objects.exists()


def test_get_record_by_uid_or_identifier(callers, people):
    by_uid = callers["ga"].get(f"{BASE}/{people[1].uid}")
    assert by_uid.status_code == 200
    assert by_uid.json()["content"]["name"] == "李*"
    by_identifier = callers["ga"].get(f"{BASE}/{pid(33)}")
    assert by_identifier.json()["uuid"] == str(people[2].uid)
    assert AccessLog.objects.count() == 2
    problem(callers["ga"].get(f"{BASE}/00000000-0000-0000-0000-000000000000"), 404)


def test_other_county_record_is_not_found_for_a_county_reader(callers, people):
    problem(callers["lixia"].get(f"{BASE}/{people[1].uid}"), 404)
    problem(callers["lixia"].post(f"{BASE}/read", {"query": {"content": {"id_number": pid(22, "370103")}}}), 404)
    assert not AccessLog.objects.exists()
    assert callers["shizhong"].get(f"{BASE}/{people[1].uid}").status_code == 200


# --- read-value --------------------------------------------------------------------------------------


def test_read_value(callers, people):
    masked = callers["ga"].get(f"{BASE}/{people[0].uid}/read-value/name.json")
    assert masked.status_code == 200
    assert masked.json() == {"value": "张*"}
    assert AccessLog.objects.get().fields == ["name"]
    plain = callers["ga_unmask"].get(f"{BASE}/{people[0].uid}/read-value/name.txt")
    assert plain["Content-Type"].startswith("text/plain")
    assert plain.content.decode() == "张三"
    camel = callers["ga"].get(f"{BASE}/{people[0].uid}/readValue/sex.json")
    assert camel.json() == {"value": "男"}
    empty = callers["ga"].get(f"{BASE}/{people[2].uid}/read-value/note.json")
    assert empty.json() == {"value": None}


def test_read_value_errors(callers, people):
    problem(callers["ga"].get(f"{BASE}/{people[0].uid}/read-value/nope.json"), 404)
    problem(callers["ga"].get(f"{BASE}/{people[0].uid}/read-value/name.xml"), 400)
    problem(callers["ga"].get(f"{BASE}/{pid(99)}/read-value/name.json"), 404)
    problem(callers["lixia"].get(f"{BASE}/{people[1].uid}/read-value/name.json"), 404)


# --- update ------------------------------------------------------------------------------------------


def test_update_by_the_authority(callers, people):
    body = {"query": {"content": {"id_number": pid(11)}}, "write": {"content": {"marital_status": "已婚"}},
            "reason": "登记结婚"}
    response = callers["mz"].put(f"{BASE}/update", body)
    assert response.status_code == 200, response.content
    out = response.json()
    assert out["version"] == 2
    assert out["content"] == {"marital_status": "已婚"}
    record = Record.objects.get(pk=people[0].pk)
    assert services.record_values(record)["marital_status"] == "已婚"
    assert services.history(record)[-1]["reason"] == "登记结婚"


def test_update_identifies_by_identifier_in_write(callers, people):
    body = {"write": {"content": {"id_number": pid(11), "address": "新地址"}}}
    assert callers["ga"].put(f"{BASE}/update", body).status_code == 200
    problem(callers["ga"].put(f"{BASE}/update", {"write": {"content": {"address": "x"}}}), 400)


def test_update_version_conflict_is_409(callers, people):
    body = {"query": {"content": {"id_number": pid(11)}}, "write": {"content": {"address": "甲地"}}}
    assert callers["ga"].put(f"{BASE}/update", body, HTTP_IF_MATCH='"1"').status_code == 200
    out = problem(callers["ga"].put(f"{BASE}/update", body | {"write": {"content": {"address": "乙地"}}},
                                    HTTP_IF_MATCH='"1"'), 409)
    assert out["type"] == "urn:dgov:problem:conflict"
    problem(callers["ga"].put(f"{BASE}/update", body, HTTP_IF_MATCH="abc"), 400)


def test_update_by_non_authoritative_department_is_403_and_audited(callers, people):
    body = {"query": {"content": {"id_number": pid(11)}}, "write": {"content": {"name": "张叁"}}}
    out = problem(callers["wj"].put(f"{BASE}/update", body), 403)
    assert "姓名" in out["detail"]
    assert services.record_values(Record.objects.get(pk=people[0].pk))["name"] == "张三"
    denied = AuditRecord.objects.get(action="registry.record.update", outcome="denied")
    assert denied.actor_id == "wj"


def test_update_non_authoritative_as_correction_or_observation(callers, people):
    body = {"query": {"content": {"id_number": pid(11)}}, "write": {"content": {"name": "张叁"}}, "reason": "户口本"}
    assert callers["wj"].put(f"{BASE}/update?non_authoritative=correct", body).status_code == 200
    request = CorrectionRequest.objects.get()
    assert request.field == "name" and request.submitted_by == "client:wj"
    assert callers["wj"].put(f"{BASE}/update?non_authoritative=observe", body).status_code == 200
    assert Observation.objects.get().field == "name"
    assert services.record_values(Record.objects.get(pk=people[0].pk))["name"] == "张三"
    problem(callers["wj"].put(f"{BASE}/update?non_authoritative=maybe", body), 422)


def test_other_county_write_is_refused_and_audited(callers, people):
    body = {"query": {"content": {"id_number": pid(22, "370103")}}, "write": {"content": {"address": "x"}}}
    problem(callers["lixia"].put(f"{BASE}/update", body), 403)
    assert AuditRecord.objects.filter(action="registry.record.update", outcome="denied", actor_id="lixia").exists()
    own = {"query": {"content": {"id_number": pid(11)}}, "write": {"content": {"address": "历下"}}}
    assert callers["lixia"].put(f"{BASE}/update", own).status_code == 200
    moving = {"query": {"content": {"id_number": pid(11)}}, "write": {"content": {"division": "370103"}}}
    problem(callers["lixia"].put(f"{BASE}/update", moving), 403)


# --- update-entries --------------------------------------------------------------------------------------


def test_update_entries(callers, people):
    body = {"query": {"content": {"sex": "男"}}, "write": {"content": {"address": "统一地址"}}}
    response = callers["ga"].put(f"{BASE}/update-entries", body)
    assert response.status_code == 200, response.content
    out = response.json()
    assert out["count"] == 2
    assert set(out["uuids"]) == {str(people[0].uid), str(people[2].uid)}
    for person in (people[0], people[2]):
        assert services.record_values(Record.objects.get(pk=person.pk))["address"] == "统一地址"
    camel = callers["ga"].put(f"{BASE}/updateEntries", {**body, "write": {"content": {"address": "再改"}}})
    assert camel.json()["count"] == 2


def test_update_entries_refused_changes_nothing(callers, people):
    body = {"query": {"content": {"sex": "男"}}, "write": {"content": {"address": "统一地址"}}}
    problem(callers["mz"].put(f"{BASE}/update-entries", body), 403)
    assert AuditRecord.objects.filter(action="registry.record.update", outcome="denied").exists()
    assert all(services.record_values(Record.objects.get(pk=p.pk)).get("address") != "统一地址" for p in people)


def test_update_entries_needs_a_query(callers, people):
    problem(callers["ga"].put(f"{BASE}/update-entries", {"write": {"content": {"address": "x"}}}), 400)


# --- update-or-create --------------------------------------------------------------------------------------


def test_update_or_create(callers, people):
    new = {"query": {"content": {"id_number": pid(55)}},
           "write": {"content": {"name": "孙七", "division": "370102"}}}
    created = callers["ga"].post(f"{BASE}/update-or-create", new)
    assert created.status_code == 200, created.content
    assert created.json()["created"] is True
    again = callers["ga"].post(f"{BASE}/updateOrCreate", {**new, "write": {"content": {"address": "地址"}}})
    assert again.json()["created"] is False
    assert again.json()["uuid"] == created.json()["uuid"]
    assert again.json()["version"] == 2
    two_keys = {"query": {"content": {"id_number": pid(55), "sex": "男"}}, "write": {"content": {"address": "y"}}}
    problem(callers["ga"].post(f"{BASE}/update-or-create", two_keys), 400)


# --- delete ---------------------------------------------------------------------------------------------------


def test_delete(callers, people):
    problem(callers["wj"].delete(f"{BASE}/{people[0].uid}/delete"), 403)
    assert AuditRecord.objects.filter(action="registry.record.delete", outcome="denied").exists()
    response = callers["ga"].delete(f"{BASE}/{people[0].uid}/delete", HTTP_X_REASON=quote("重复登记"))
    assert response.status_code == 204
    record = Record.objects.get(pk=people[0].pk)
    assert record.deleted_at is not None
    assert services.history(record)[-1]["reason"] == "重复登记"
    problem(callers["ga"].get(f"{BASE}/{people[0].uid}"), 404)
    problem(callers["ga"].delete(f"{BASE}/{people[0].uid}/delete"), 404)
    assert callers["ga"].delete(f"{BASE}/{pid(33)}/delete?reason=test").status_code == 204


# --- registry and version in the path ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "1.0", "v1"])
def test_version_spellings(callers, people, version):
    assert callers["ga"].get(f"/api/v1/registries/data/{REGISTRY}/{version}").status_code == 200


@pytest.mark.parametrize("path", [f"/api/v1/registries/data/{REGISTRY}/2", f"/api/v1/registries/data/{REGISTRY}/x",
                                  "/api/v1/registries/data/no.such/1"])
def test_unknown_registry_or_version_is_404(callers, people, path):
    problem(callers["ga"].get(path), 404)


# --- malformed bodies: 4xx problem+json, never 500 --------------------------------------------------------------


MALFORMED = [
    ("not json", None),
    ("[1, 2]", None),
    ("null", None),
    ('{"query": {}}', None),
    ('{"write": {"content": [1]}}', None),
    ('{"query": {"content": "x"}, "write": {"content": {}}}', None),
    ('{"write": {"content": {"nope": 1}}, "query": {"content": {"nope": 1}}}', None),
    ('{"query": {"content": {"id_number": {"a": 1}}}, "write": {"content": {"sex": ["男"]}}}', None),
    ('{"query": {"content": {"birth_date": "2020-13-45"}}, "write": {"content": {"birth_date": 5}}}', None),
]


@pytest.mark.parametrize("raw", [m[0] for m in MALFORMED])
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("POST", "/create"), ("POST", "/exists"), ("POST", "/read"), ("PUT", "/update"), ("PUT", "/update-entries"),
     ("POST", "/update-or-create")],
)
def test_malformed_bodies_are_4xx_problems(callers, people, method, suffix, raw):
    response = callers["ga"].call(method, BASE + suffix, raw=raw)
    assert 400 <= response.status_code < 500, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/problem+json")


# --- sessions -----------------------------------------------------------------------------------------------------


def test_official_session_reads_and_citizen_is_refused(client, people, api_orgs, django_user_model):
    official = django_user_model.objects.create_user(
        username="ga-official", password="x", kind="official", department=api_orgs["ga"]
    )
    client.force_login(official)
    body = client.get(BASE).json()
    assert body["count"] == 3
    assert AccessLog.objects.filter(reader="ga-official").count() == 3
    citizen = django_user_model.objects.create_user(username="c1", password="x", kind="person")
    client.force_login(citizen)
    problem(client.get(BASE), 403)


def test_unauthenticated_is_401(client, people):
    problem(client.get(BASE), 401)
    problem(client.post(f"{BASE}/read", data="{}", content_type="application/json"), 401)
