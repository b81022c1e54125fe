"""Fixtures of the exchange tests: departments, officials, a person registry, published catalogue entries, clients."""

import base64
import datetime

import pytest
from exchange_helpers import OTHER_ID, PERSON_ID

from dgov.kernel.validators import make_uscc

PERSON_FIELDS = [
    {"name": "id_number", "label": "公民身份号码", "type": "resident_id", "sensitivity": "personal", "authority": "GA"},
    {"name": "name", "label": "姓名", "type": "string", "authority": "GA", "max_length": 50},
    {"name": "birth_date", "label": "出生日期", "type": "date", "authority": "GA"},
    {"name": "income", "label": "月收入", "type": "decimal", "authority": "GA"},
]


@pytest.fixture(autouse=True)
def _setup(settings):
    """Chinese messages, the test issuer, no rate limit unless a test sets one, checkpoints every 5 entries."""
    from django.utils import translation

    from dgov.exchange import services

    services._leases.clear()
    settings.OIDC_ISSUER = "http://testserver"
    settings.EXCHANGE_RATE_PER_SECOND = 0
    settings.EXCHANGE_CHECKPOINT_EVERY = 5
    with translation.override("zh-hans"):
        yield


@pytest.fixture
def orgs(province):
    """Provincial GA (provider), MZ and RS (consumers), DSJ (publishes the catalogue)."""
    from dgov.kernel.models import Organization

    specs = [
        ("ga", "370000-GAT", "山东省公安厅", "GA"),
        ("mz", "370000-MZT", "山东省民政厅", "MZ"),
        ("rs", "370000-RST", "山东省人社厅", "RS"),
        ("dsj", "370000-DSJ", "山东省大数据局", "DSJ"),
    ]
    return {
        key: Organization.objects.create(
            name=name, code=code, uscc=make_uscc("1", "1", "370000", serial=n), level=1, division=province, kind=kind
        )
        for n, (key, code, name, kind) in enumerate(specs, start=1)
    }


@pytest.fixture
def users(orgs, django_user_model):
    """One official per department (keyed like ``orgs``) and a second GA official ``ga2``."""
    made = {
        key: django_user_model.objects.create_user(
            username=f"x-{key}", password="Exchange-test-passw0rd", kind="official", department=org
        )
        for key, org in orgs.items()
    }
    made["ga2"] = django_user_model.objects.create_user(
        username="x-ga2", password="Exchange-test-passw0rd", kind="official", department=orgs["ga"]
    )
    return made


@pytest.fixture
def person_registry(orgs):
    """``t.person`` owned by GA with two people."""
    from dgov.registry import services

    registry = services.create_registry(
        code="t.person",
        name="人口",
        owner=orgs["ga"],
        identifier_field="id_number",
        fields=PERSON_FIELDS,
        actor="system:test",
        library_code="test",
    )
    for number, name, income in ((PERSON_ID, "王小明", "3200.50"), (OTHER_ID, "李四", "9000")):
        services.create_record(
            registry,
            {"id_number": number, "name": name, "birth_date": "1990-05-17", "income": income},
            actor="system:test",
            source=orgs["ga"],
        )
    return registry


@pytest.fixture
def resources(orgs, users, person_registry):
    """Published entries of GA: ``person`` (无条件共享, id_number and income 有条件), ``secret`` (不予共享)."""
    from dgov.catalog import services

    services.ensure_standard_classes(actor="system:test")
    from dgov.catalog.models import ResourceClass

    cls = ResourceClass.objects.get(code="101001")
    common = {
        "format": "database",
        "sharing_mode": "api",
        "open_type": "none",
        "update_cycle": "realtime",
        "summary": "人口基本信息，供各部门共享核验。",
        "keywords": "人口",
    }
    person = services.create_resource(
        actor=users["ga"],
        classification=cls,
        data={"name": "人口基本信息", "sharing_type": "unconditional", **common},
        items=[
            {"registry": "t.person", "registry_field": "id_number", "sharing_type": "conditional"},
            {"registry": "t.person", "registry_field": "name"},
            {"registry": "t.person", "registry_field": "birth_date"},
            {"registry": "t.person", "registry_field": "income", "sharing_type": "conditional"},
        ],
    )
    secret = services.create_resource(
        actor=users["ga"],
        classification=cls,
        data={
            "name": "在逃人员信息",
            "sharing_type": "none",
            "sharing_conditions": "依据《人民警察法》不予共享",
            **common,
        },
        items=[{"registry": "t.person", "registry_field": "name", "is_own": False}],
    )
    for resource in (person, secret):
        services.publish(resource, actor=users["dsj"], note="发布")
        resource.refresh_from_db()
    return {"person": person, "secret": secret}


@pytest.fixture
def name_request(users, resources):
    """省民政厅's share request for name and birth date of the person resource, in full, for 30 days."""
    from dgov.exchange import services

    return services.request_share(
        resources["person"],
        actor=users["mz"],
        items={"name": "full", "birth_date": "full"},
        purpose="低保资格审核",
        legal_basis="《社会救助暂行办法》",
        period_end=datetime.date.today() + datetime.timedelta(days=30),
    )


def basic(client_id, secret):
    """An HTTP Basic Authorization value."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.fixture
def make_client(orgs):
    """A factory: a client-credentials client of a department, returning a function that gets a token."""
    from dgov.oidc.services import clients

    def make(org_key="mz", client_id="mz-system", scopes=("exchange:call",)):
        client, secret = clients.create_client(
            name="业务系统",
            organization=orgs[org_key],
            actor="system:test",
            redirect_uris=[],
            post_logout_redirect_uris=[],
            grant_types=["client_credentials"],
            scopes=list(scopes),
            first_party=False,
            client_id=client_id,
        )

        def token(http):
            response = http.post(
                "/oidc/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(client_id, secret)
            )
            assert response.status_code == 200, response.content
            return response.json()["access_token"]

        return token

    return make
