"""The e-licence API: scopes, department scope (403 audited), issue, bulk all or nothing, changes, problems."""

import base64
import json

import pytest

from dgov.kernel.models import AuditRecord
from dgov.licenses import keys, services
from dgov.licenses.models import Licence
from dgov.oidc import jose

from .conftest import person_id

pytestmark = pytest.mark.django_db

BASE = "/api/v1/licences"


class Caller:
    """An API client (HTTP Basic) making JSON calls."""

    def __init__(self, http, client_id, secret):
        self.http = http
        self.auth = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()

    def get(self, path, **params):
        return self.http.get(path, params, HTTP_AUTHORIZATION=self.auth)

    def post(self, path, body=None, raw=None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.http.post(path, data=data, content_type="application/json", HTTP_AUTHORIZATION=self.auth)


@pytest.fixture
def callers(client, orgs):
    """Clients: ga (issue), ga_ro (read), ga_none (another scope), mz_city (issue), dsj (read)."""
    from dgov.identity.services import create_api_client

    specs = {
        "ga": ("ga", ["licences:issue"]),
        "ga_ro": ("ga", ["licences:read"]),
        "ga_none": ("ga", ["registry:read"]),
        "mz_city": ("mz_city", ["licences:issue"]),
        "dsj": ("dsj", ["licences:read"]),
    }
    out = {}
    for name, (org, scopes) in specs.items():
        api_client, secret = create_api_client(
            f"{name} 系统", orgs[org], scopes, actor="system:test", client_id=name.replace("_", "-")
        )
        out[name] = Caller(client, api_client.client_id, secret)
    return out


def problem(response, status):
    """The problem+json body of an error answer with this status."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()


def driving(seq: int, **extra) -> dict:
    """A 机动车驾驶证 to issue."""
    return {
        "holder_name": f"驾驶员{seq}",
        "holder_id": person_id(seq),
        "data": {"vehicle_class": "C1", "first_issued_on": "2020-05-06"},
        **extra,
    }


def test_types_and_scopes(client, callers, demo_types):
    listed = callers["ga_ro"].get(f"{BASE}/types")
    assert listed.status_code == 200 and {t["name"] for t in listed.json()} >= {"营业执照", "结婚证"}
    one = callers["ga_ro"].get(f"{BASE}/types/{demo_types['结婚证'].code}").json()
    assert one["holder_kind"] == "person" and one["layout"]["size"] == "A5" and one["department"] == "370000-MZ"
    problem(callers["ga_ro"].get(f"{BASE}/types/NOPE"), 404)
    problem(callers["ga_none"].get(f"{BASE}/types"), 403)
    problem(client.get(f"{BASE}/types"), 401)


def test_issue_read_and_change(callers, demo_types, orgs):
    code = demo_types["机动车驾驶证"].code
    response = callers["ga"].post(f"{BASE}/", {"type": code, **driving(1), "alg": "ES256"})
    assert response.status_code == 201, response.content
    body = response.json()
    identifier = body["identifier"]
    assert body["issuer"] == "370000-GA" and body["holder_name"] == "驾***" and body["holder_id"].startswith("370102")
    assert person_id(1) not in response.content.decode()
    licence = Licence.objects.get(identifier=identifier)
    assert licence.source == "api" and licence.issued_by == "ga"
    credential = callers["ga_ro"].get(f"{BASE}/{identifier}/credential")
    assert credential.status_code == 200 and credential["Content-Type"] == "application/vc+jwt"
    header, _vc = jose.verify(credential.content.decode(), keys.public_key)
    assert header["alg"] == "ES256"
    detail = callers["ga_ro"].get(f"{BASE}/{identifier}").json()
    assert detail["data"]["vehicle_class"] == "C1" and detail["events"][0]["action"] == "issue"
    assert AuditRecord.objects.filter(action="licenses.licence.view", outcome="success").exists()
    # A read-only client may not change it.
    problem(callers["ga_ro"].post(f"{BASE}/{identifier}/suspend", {"reason": "x"}), 403)
    changed = callers["ga"].post(f"{BASE}/{identifier}/vary", {"changes": {"vehicle_class": "B2"}, "reason": "增驾"})
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert changed.json()["data"]["vehicle_class"] == "B2"
    assert callers["ga"].post(f"{BASE}/{identifier}/renew", {"reason": "换证"}).json()["version"] == 3
    assert callers["ga"].post(f"{BASE}/{identifier}/suspend", {"reason": "扣留"}).json()["status"] == "suspended"
    problem(callers["ga"].post(f"{BASE}/{identifier}/suspend", {"reason": "again"}), 400)
    assert callers["ga"].post(f"{BASE}/{identifier}/resume", {}).json()["status"] == "valid"
    problem(callers["ga"].post(f"{BASE}/{identifier}/revoke", {"reason": ""}), 400)
    assert callers["ga"].post(f"{BASE}/{identifier}/revoke", {"reason": "注销"}).json()["status"] == "revoked"
    problem(callers["ga"].get(f"{BASE}/1.2.156.3005.2.X.Y.Z.0"), 404)


def test_bad_input_is_a_problem_never_a_500(callers, demo_types):
    code = demo_types["机动车驾驶证"].code
    body = problem(callers["ga"].post(f"{BASE}/", {"type": code, **driving(1, holder_id="123")}), 400)
    assert any(error["loc"] == ["holder_id"] for error in body["errors"])
    body = problem(callers["ga"].post(f"{BASE}/", {"type": code, **driving(1, data={"vehicle_class": "Z"})}), 400)
    assert {tuple(e["loc"]) for e in body["errors"]} == {("vehicle_class",), ("first_issued_on",)}
    problem(callers["ga"].post(f"{BASE}/", {"type": code}), 422)
    assert callers["ga"].post(f"{BASE}/", raw="{not json").status_code in (400, 422)
    problem(callers["ga"].post(f"{BASE}/", {"type": "NOPE", **driving(1)}), 404)
    problem(callers["ga"].post(f"{BASE}/", {"type": code, **driving(1), "valid_from": "2026-02-30"}), 422)
    problem(callers["ga"].post(f"{BASE}/", {"type": code, **driving(1), "alg": "RS256"}), 422)
    assert not Licence.objects.exists()


def test_other_departments_are_refused_and_audited(callers, demo_types, orgs):
    # Issuing a type the department may not issue, or in another department's name.
    problem(callers["mz_city"].post(f"{BASE}/", {"type": demo_types["机动车驾驶证"].code, **driving(1)}), 403)
    assert AuditRecord.objects.filter(action="licenses.licence.issue", outcome="denied").count() == 1
    code = demo_types["机动车驾驶证"].code
    problem(callers["ga"].post(f"{BASE}/", {"type": code, "issuer": "370000-MZ", **driving(1)}), 403)
    licence = services.issue(demo_types["机动车驾驶证"], issuer=orgs["ga"], actor="system:test", **driving(2))
    # Reading or changing another department's licence.
    problem(callers["mz_city"].get(f"{BASE}/{licence.identifier}"), 403)
    problem(callers["mz_city"].post(f"{BASE}/{licence.identifier}/revoke", {"reason": "x"}), 403)
    problem(callers["mz_city"].get(f"{BASE}/{licence.identifier}/credential"), 403)
    for action in ("licenses.licence.view", "licenses.licence.revoke", "licenses.credential.download"):
        assert AuditRecord.objects.filter(action=action, outcome="denied").count() == 1, action
    licence.refresh_from_db()
    assert licence.status == "valid"
    # Listing is scoped; the provincial data administration sees all but changes nothing.
    assert callers["mz_city"].get(f"{BASE}/").json()["count"] == 0
    assert callers["ga_ro"].get(f"{BASE}/").json()["count"] == 1
    assert callers["dsj"].get(f"{BASE}/", type=code).json()["results"][0]["identifier"] == licence.identifier
    problem(callers["dsj"].post(f"{BASE}/{licence.identifier}/suspend", {"reason": "x"}), 403)


def test_list_filters_and_holder_search(callers, demo_types, orgs):
    licence_type = demo_types["机动车驾驶证"]
    issued = services.issue_many(
        licence_type, [driving(n) for n in range(1, 8)], issuer=orgs["ga"], actor="system:test", source="t"
    )
    page = callers["ga_ro"].get(f"{BASE}/", limit=3, offset=0).json()
    assert page["count"] == 7 and len(page["results"]) == 3
    assert callers["ga_ro"].get(f"{BASE}/", number=issued[2].number).json()["count"] == 1
    assert callers["ga_ro"].get(f"{BASE}/", status="revoked").json()["count"] == 0
    problem(callers["ga_ro"].get(f"{BASE}/", limit=100000), 422)
    found = callers["ga_ro"].post(f"{BASE}/search", {"holder_id": person_id(4)}).json()
    assert [row["identifier"] for row in found] == [issued[3].identifier]
    assert callers["mz_city"].post(f"{BASE}/search", {"holder_id": person_id(4)}).json() == []


def test_bulk_is_all_or_nothing(callers, demo_types):
    code = demo_types["机动车驾驶证"].code
    rows = [driving(1), driving(2, holder_id="370102199001011238"), driving(3, data={"vehicle_class": "C1"})]
    body = problem(callers["ga"].post(f"{BASE}/bulk", {"type": code, "rows": rows}), 400)
    assert {tuple(e["loc"]) for e in body["errors"]} == {("rows", 1, "holder_id"), ("rows", 2, "first_issued_on")}
    assert not Licence.objects.exists()
    response = callers["ga"].post(f"{BASE}/bulk", {"type": code, "rows": [driving(n) for n in range(1, 6)]})
    assert response.status_code == 201 and response.json()["issued"] == 5
    assert Licence.objects.filter(source="api:bulk").count() == 5
    problem(callers["ga_ro"].post(f"{BASE}/bulk", {"type": code, "rows": [driving(9)]}), 403)
    problem(callers["ga"].post(f"{BASE}/bulk", {"type": code, "rows": []}), 400)


def test_officials_use_the_api_with_their_session(client, people_users, demo_types):
    client.force_login(people_users["ga"])
    code = demo_types["机动车驾驶证"].code
    response = client.post(f"{BASE}/", json.dumps({"type": code, **driving(1)}), content_type="application/json")
    assert response.status_code == 201
    assert client.get(f"{BASE}/").json()["count"] == 1
    client.force_login(people_users["citizen"])
    problem(client.get(f"{BASE}/"), 403)
