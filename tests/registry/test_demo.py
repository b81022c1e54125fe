"""The demo province: valid, consistent, written by the right sources, deterministic, seeded once."""

import datetime as dt
from collections import Counter, defaultdict

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from dgov.identity.models import User
from dgov.kernel.models import AuditRecord, Division, Organization
from dgov.kernel.services import audit
from dgov.kernel.validators import validate_resident_id, validate_uscc
from dgov.oidc.models import Client as OidcClient
from dgov.registry import demo, libraries, schema, services
from dgov.registry.models import (
    AccessLog,
    CorrectionRequest,
    Delegation,
    DemoDataset,
    Observation,
    Record,
    RecordChange,
    RecordKey,
    Registry,
    RegistrySchema,
)

pytestmark = pytest.mark.django_db


def _generate(persons=250, enterprises=40, seed=7):
    return demo.generate(province_code="370000", persons=persons, enterprises=enterprises, seed=seed)


def _records(code):
    """(record, decrypted values) of a registry, in insertion order."""
    return [
        (record, services.record_values_now(record))
        for record in Record.objects.filter(registry__code=code).select_related("created_by_org").order_by("pk")
    ]


def _adult_on(birth: str) -> bool:
    born = dt.date.fromisoformat(birth)
    return born <= demo.TODAY.replace(year=demo.TODAY.year - 18)


def test_demo_province_is_valid_and_consistent():
    report = _generate()
    persons = _records("population.person")
    households = _records("population.household")
    enterprises = _records("legal_entity.enterprise")
    assert report.persons == len(persons) == 250
    assert report.enterprises == len(enterprises) == 40
    # the demo citizen and enterprise agent are verified, and the citizen's record has been read
    from dgov.identity.models import User
    from dgov.registry.services import access_log_for_digest, subject_digest_of_account

    citizen, agent = User.objects.get(username="citizen"), User.objects.get(username="enterprise")
    assert citizen.real_name_level == agent.real_name_level == 2 and agent.enterprise_uscc
    assert access_log_for_digest(subject_digest_of_account(citizen)).count() == len(demo.DEMO_READS)
    assert report.households == len(households) > 50

    villages = {d.code: d for d in Division.objects.filter(level=Division.Level.VILLAGE, code__startswith="37")}
    ids = [values["id_number"] for _r, values in persons]
    assert len(set(ids)) == len(ids)
    person_by_uid = {}
    for record, values in persons:
        person_by_uid[str(record.uid)] = values
        validate_resident_id(values["id_number"])
        village = villages[values["division_code"]]  # persons live in (synthetic) villages of the province
        assert record.division_code == village.code
        assert values["address"].startswith(village.full_name)
        assert values["sex"] == ("1" if int(values["id_number"][16]) % 2 else "2")
        assert values["id_number"][6:14] == values["birth_date"].replace("-", "")
        assert record.created_by_org.kind == "GA"

    # every household has exactly one head, who is its `head`, and its members share its address
    members = defaultdict(list)
    for _record, values in persons:
        members[values["household"]].append(values)
    assert set(members) == {str(record.uid) for record, _v in households}
    for record, values in households:
        heads = [m for m in members[str(record.uid)] if m["relation"] == "head"]
        assert len(heads) == 1
        assert person_by_uid[values["head"]] is heads[0]
        assert all(m["address"] == values["address"] for m in members[str(record.uid)])

    market_authorities = set(Organization.objects.filter(kind="SCJG").values_list("code", flat=True))
    for record, values in enterprises:
        validate_uscc(values["uscc"])
        assert values["uscc"][2:4] == "37"
        representative = person_by_uid[values["legal_representative"]]  # exists, and is an adult
        assert _adult_on(representative["birth_date"])
        assert values["registration_authority"] in market_authorities
        assert record.created_by_org.kind == "SCJG"

    # personal values are sealed and found through the blind index
    record, values = persons[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT data, sealed FROM registry_record WHERE id = %s", [record.pk])
        raw_data, raw_sealed = cursor.fetchone()
    assert values["id_number"] not in str(raw_data) and values["id_number"] not in raw_sealed
    assert raw_sealed.startswith("v1:")
    assert "id_number" not in record.data and "address" not in record.data
    registry = services.get_registry("population.person")
    assert services.find_record(registry, "id_number", values["id_number"]).pk == record.pk
    assert registry.owner.code == "370000-GAT"

    # departments, officials and the demo logins
    assert Organization.objects.filter(level=Organization.Level.PROVINCE).count() >= 10
    assert Organization.objects.filter(level=Organization.Level.COUNTY).exists()
    officials = User.objects.filter(kind=User.Kind.OFFICIAL)
    assert officials.exists()
    assert not officials.filter(department__isnull=True).exists()
    logins = demo.demo_logins()
    assert {login["username"] for login in logins} >= {"admin", "dsj_admin", "citizen"}
    admin = User.objects.get(username="admin")
    assert admin.check_password(demo.DEMO_PASSWORD) and admin.is_superuser
    # officials and the administrator have the published demo TOTP secret as their second factor (ADR 0012)
    from dgov.identity import services as identity_services

    assert identity_services.mfa_methods(admin) == ["totp"]
    assert not officials.exclude(mfa_methods__confirmed_at__isnull=False).exists()
    by_name = {login["username"]: login for login in logins}
    assert by_name["admin"]["totp_secret"] == demo.DEMO_TOTP_SECRET and "totp_secret" not in by_name["citizen"]
    assert admin.phone == "+8613900000001"
    assert User.objects.get(username="dsj_admin").department.code.endswith("-DSJ")


def test_every_registry_has_valid_demo_records_from_their_sources():
    report = _generate(persons=300, enterprises=60)
    definitions = libraries.load_definitions()
    codes = {d["code"] for d in definitions}
    assert set(report.records) == codes
    uids = {
        code: {str(uid) for uid in Record.objects.filter(registry__code=code).values_list("uid", flat=True)}
        for code in codes
    }
    for definition in definitions:
        code = definition["code"]
        registry = services.get_registry(code)
        fields = services.registry_fields(registry)
        rows = _records(code)
        assert rows, f"{code} has no demo records"
        assert len(rows) == report.records[code]
        identifiers = set()
        for record, values in rows:
            # the generator wrote values in their cleaned form: validating them changes nothing
            assert schema.clean_values(fields, values) == values, (code, values)
            identifiers.add(values[registry.identifier_field])
            for field in fields:
                if field.type == "reference" and values.get(field.name):
                    assert values[field.name] in uids[field.ref], (code, field.name)
                if field.type == "resident_id" and values.get(field.name):
                    validate_resident_id(values[field.name])
                if field.type == "uscc" and values.get(field.name):
                    validate_uscc(values[field.name])
            assert record.division_code == (values.get(registry.scope_field) or "")
        assert len(identifiers) == len(rows), f"{code}: duplicate identifiers"

    # every record was written by its authoritative department
    events = _records("population.event")
    by_kind = Counter((values["kind"], record.created_by_org.kind) for record, values in events)
    assert by_kind[("birth", "WJ")] > 0 and by_kind[("marriage", "MZ")] > 0 and by_kind[("divorce", "MZ")] > 0
    assert {kind for kind, _source in by_kind} <= {"birth", "death", "marriage", "divorce"}
    assert all(source == {"birth": "WJ", "death": "WJ"}.get(kind, "MZ") for kind, source in by_kind)
    deaths = [values["person"] for _r, values in events if values["kind"] == "death"]
    statuses = {str(r.uid): v["status"] for r, v in _records("population.person")}
    assert all(statuses[uid] == "deceased" for uid in deaths)
    # divisions: names by 民政, then centroids and boundaries added by 自然资源 as a second source
    divisions = _records("spatial.division")
    assert {r.created_by_org.kind for r, _v in divisions} == {"MZ"}
    record, values = next((r, v) for r, v in divisions if v["code"] == "370100")
    assert values["centroid"]["type"] == "Point" and values["boundary"]["type"] == "Polygon"
    lon, lat = values["centroid"]["coordinates"]
    assert 114.8 <= lon <= 122.7 and 34.4 <= lat <= 38.4  # inside Shandong's bounding box
    change = RecordChange.objects.get(record=record)
    assert change.source.kind == "ZRZY" and set(change.changes) == {"centroid", "boundary", "area_km2"}
    expected = {
        "credit.licence": "FGW",
        "macro.indicator": "TJ",
        "licence.index": "DSJ",
        "social_security.insured": "RS",
        "emergency.resource": "YJ",
    }
    for code, kind in expected.items():
        assert {r.created_by_org.kind for r, _v in _records(code)} == {kind}, code


def _snapshot():
    """What must not depend on anything but the seed: uids, names, ID numbers, USCCs, events."""
    persons = sorted((str(r.uid), v["name"], v["id_number"], v["household"]) for r, v in _records("population.person"))
    enterprises = sorted((str(r.uid), v["uscc"], v["name"]) for r, v in _records("legal_entity.enterprise"))
    events = sorted((v["document_no"], v["person"]) for _r, v in _records("population.event"))
    counts = dict(Counter(Record.objects.values_list("registry__code", flat=True)))
    return persons, enterprises, events, counts


def _wipe():
    """Remove everything the demo made except divisions (reference data) and keys."""
    for model in (AccessLog, RecordChange, RecordKey, Observation, CorrectionRequest, Delegation, Record):
        model.objects.all().delete()
    Registry.objects.update(current_schema=None)
    RegistrySchema.objects.all().delete()
    Registry.objects.all().delete()
    DemoDataset.objects.all().delete()
    User.objects.all().delete()
    OidcClient.objects.all().delete()
    while Organization.objects.exists():
        Organization.objects.filter(children__isnull=True).delete()
    services.clear_caches()


@pytest.mark.slow
def test_demo_is_deterministic():
    _generate(persons=120, enterprises=10, seed=99)
    first = _snapshot()
    _wipe()
    _generate(persons=120, enterprises=10, seed=99)
    assert _snapshot() == first


def test_demo_command_seeds_once_and_is_audited():
    call_command("demo", "--persons", "40", "--enterprises", "4")
    # 40 generated, and the newborn of the services demo's 主动服务 (dgov.services.demo.seed_birth_offer).
    assert Record.objects.filter(registry__code="population.person").count() == 40 + 1
    record = AuditRecord.objects.filter(action="registry.demo.generate").get()
    assert record.detail["persons"] == 40
    assert record.detail["records"]["population.person"] == 40
    assert AuditRecord.objects.filter(action="registry.record.bulk_create").count() >= len(record.detail["records"])
    assert audit.verify().ok
    with pytest.raises(CommandError):
        call_command("demo", "--persons", "40")
    call_command("demo", "--persons", "40", "--if-missing")
    assert Record.objects.filter(registry__code="population.person").count() == 40 + 1
    assert DemoDataset.objects.count() == 1


# --- OpenID Connect clients (接入应用) ---------------------------------------------------------------------


def _pkce():
    import base64
    import hashlib
    import secrets

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _authorize(http, client_id, redirect_uri, scope="openid profile"):
    """An authorization request of the logged-in browser; returns (response, PKCE verifier)."""
    from urllib.parse import urlencode

    verifier, challenge = _pkce()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": "st-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return http.get("/oidc/authorize?" + urlencode(params)), verifier


def _code(location):
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(location).query)["code"][0]


def _basic(client_id, secret):
    import base64

    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_demo_registers_three_oidc_clients_once_and_they_work(client, settings):
    from joserfc import jws

    from dgov.oidc.services import clients

    settings.OIDC_ISSUER = "http://testserver"
    report = _generate(persons=40, enterprises=4)
    assert report.oidc_clients == 3
    found = {c.client_id: c for c in OidcClient.objects.select_related("organization")}
    assert set(found) == {"demo-wjw-system", "demo-zhangshangban", "demo-data-sharing"}
    wjw, app, data = found["demo-wjw-system"], found["demo-zhangshangban"], found["demo-data-sharing"]
    assert wjw.name == "省卫生健康委业务系统" and wjw.organization.kind == "WJ" and wjw.organization.level == 1
    assert wjw.client_type == "confidential" and wjw.id_token_alg == "SM2" and not wjw.first_party
    assert wjw.redirect_uris == ["https://wj.example.gov.cn/oidc/callback"] and wjw.secret_hash
    assert app.name == "掌上办" and app.is_public and app.first_party and not app.secret_hash
    assert app.redirect_uris == ["cn.gov.example.zsb:/oauth2redirect"] and app.organization.kind == "DSJ"
    assert data.name == "数据共享服务" and data.grant_types == ["client_credentials"]
    assert data.scopes == ["registry:read"] and data.secret_hash
    created = AuditRecord.objects.filter(action="oidc.client.create")
    assert created.count() == 3 and set(created.values_list("actor_label", flat=True)) == {demo.DEMO_ACTOR}

    # Idempotent: nothing is registered twice, and a client an administrator changed is left alone.
    clients.deactivate_client(data, actor="system:test")
    assert demo.ensure_demo_clients() == []
    assert OidcClient.objects.count() == 3 and AuditRecord.objects.filter(action="oidc.client.create").count() == 3
    assert not OidcClient.objects.get(client_id="demo-data-sharing").is_active

    citizen = User.objects.get(username="citizen")
    client.force_login(citizen)
    # 掌上办: first-party, so no consent page; a public client redeems its code with PKCE alone.
    response, verifier = _authorize(client, app.client_id, app.redirect_uris[0], "openid profile offline_access")
    assert response.status_code == 302 and response["Location"].startswith("cn.gov.example.zsb:/oauth2redirect?")
    tokens = client.post(
        "/oidc/token",
        {
            "grant_type": "authorization_code",
            "code": _code(response["Location"]),
            "redirect_uri": app.redirect_uris[0],
            "code_verifier": verifier,
            "client_id": app.client_id,
        },
    )
    assert tokens.status_code == 200 and {"id_token", "refresh_token"} <= set(tokens.json())

    # The department system asks for consent, then gets an SM2-signed id_token once an administrator
    # has given it a secret (the demo prints none).
    page, verifier = _authorize(client, wjw.client_id, wjw.redirect_uris[0])
    assert page.status_code == 200 and "省卫生健康委业务系统" in page.content.decode()
    answer = client.post("/oidc/consent", {"rid": page.context["rid"], "decision": "allow"})
    assert answer.status_code == 302 and answer["Location"].startswith("https://wj.example.gov.cn/oidc/callback?")
    secret = clients.rotate_secret(wjw, actor="system:test")
    tokens = client.post(
        "/oidc/token",
        {
            "grant_type": "authorization_code",
            "code": _code(answer["Location"]),
            "redirect_uri": wjw.redirect_uris[0],
            "code_verifier": verifier,
        },
        **_basic(wjw.client_id, secret),
    )
    assert tokens.status_code == 200
    assert jws.extract_compact(tokens.json()["id_token"].encode()).protected["alg"] == "SM2"


def test_demo_data_client_gets_registry_read_tokens_and_backfill_by_command(client, settings):
    from io import StringIO

    from dgov.oidc.services import clients

    settings.OIDC_ISSUER = "http://testserver"
    out = StringIO()
    call_command("demo", "--persons", "40", "--enterprises", "4", stdout=out)
    assert "3 OIDC clients" in out.getvalue()
    data = OidcClient.objects.get(client_id="demo-data-sharing")
    secret = clients.rotate_secret(data, actor="system:test")
    assert secret not in out.getvalue()
    response = client.post("/oidc/token", {"grant_type": "client_credentials"}, **_basic(data.client_id, secret))
    assert response.status_code == 200 and response.json()["scope"] == "registry:read"

    # A database seeded before the demo had clients gets them from `dgov demo --if-missing`.
    OidcClient.objects.filter(client_id="demo-zhangshangban").delete()
    out = StringIO()
    call_command("demo", "--if-missing", stdout=out)
    assert "demo-zhangshangban" in out.getvalue()
    assert OidcClient.objects.filter(client_id__startswith="demo-").count() == 3
    out = StringIO()
    call_command("demo", "--if-missing", stdout=out)
    assert "OIDC" not in out.getvalue()
