"""Fixtures of the wallet and licence-use tests: holders, licences, departments' officials and API clients.

Import with ``from .wallet_fixtures import *`` (pytest finds fixtures in the importing module).
"""

import base64
import datetime
import json

import pytest

from dgov.kernel.fields import blind_index
from dgov.kernel.validators import make_resident_id, make_uscc
from dgov.licenses import services

HOLDER_ID = make_resident_id("370102", datetime.date(1990, 1, 1), 123)
OTHER_ID = make_resident_id("370102", datetime.date(1985, 6, 1), 456)
AGENT_ID = make_resident_id("370102", datetime.date(1992, 3, 3), 789)
COMPANY_USCC = make_uscc("9", "1", "370102", serial=4242)
PASSWORD = "Wallet-test-passw0rd"
USE = "/api/v1/licences/use"

__all__ = [
    "AGENT_ID",
    "COMPANY_USCC",
    "HOLDER_ID",
    "OTHER_ID",
    "USE",
    "Caller",
    "agency",
    "agent",
    "callers",
    "company",
    "holder",
    "marriage",
    "officials",
    "other_marriage",
    "problem",
    "shop",
    "shop_type",
    "stranger",
]


def _user(django_user_model, username, kind, *, level=1, id_number="", uscc="", display_name="", **fields):
    """An account with the real-name state verification would have left (level, ID digest, USCC)."""
    user = django_user_model.objects.create_user(
        username=username, password=PASSWORD, kind=kind, display_name=display_name, **fields
    )
    django_user_model.objects.filter(pk=user.pk).update(
        real_name_level=level,
        id_number_digest=blind_index(id_number, purpose="resident_id") if id_number else "",
        enterprise_uscc=uscc,
    )
    user.refresh_from_db()
    return user


@pytest.fixture
def holder(db, django_user_model):
    """张三, a person account verified at level 2 with the ID number of the marriage certificate."""
    return _user(django_user_model, "zhangsan", "person", level=2, id_number=HOLDER_ID, display_name="张三")


@pytest.fixture
def stranger(db, django_user_model):
    """王五, verified at level 2 with another ID number (holds ``other_marriage``)."""
    return _user(django_user_model, "wangwu", "person", level=2, id_number=OTHER_ID, display_name="王五")


@pytest.fixture
def company(db, django_user_model):
    """An enterprise account verified with COMPANY_USCC."""
    return _user(django_user_model, "company", "enterprise", level=2, uscc=COMPANY_USCC, display_name="泉城食品")


@pytest.fixture
def agent(db, django_user_model):
    """钱经办, a verified person who will act for the company."""
    return _user(django_user_model, "qianjb", "person", level=2, id_number=AGENT_ID, display_name="钱经办")


def agency(company, agent, scopes=("licences",)):
    """Authorize ``agent`` to act for ``company`` with ``scopes`` for 30 days."""
    from django.utils import timezone

    from dgov.identity import agents

    return agents.grant_agency(
        company,
        name=agent.display_name,
        id_number=AGENT_ID,
        scopes=list(scopes),
        valid_until=timezone.now() + datetime.timedelta(days=30),
        actor=company,
    )


@pytest.fixture
def officials(civil, django_user_model):
    """An official of each department of ``civil`` (mz, mz_city, ga) and an administrator ``admin``."""
    made = {
        key: django_user_model.objects.create_user(
            username=f"w-{key}", password=PASSWORD, kind="official", display_name=f"{org.name}干部", department=org
        )
        for key, org in civil.items()
    }
    made["admin"] = django_user_model.objects.create_user(username="w-admin", password=PASSWORD, kind="admin")
    return made


@pytest.fixture
def marriage(marriage_type, civil):
    """张三's marriage certificate, issued by the city 民政局 (conditional sharing)."""
    return services.issue(
        marriage_type,
        issuer=civil["mz_city"],
        holder_name="张三",
        holder_id=HOLDER_ID,
        data={"spouse_name": "李四", "registered_on": "2026-05-20", "remark": "补领"},
        actor="cli:test",
    )


@pytest.fixture
def other_marriage(marriage_type, civil):
    """王五's marriage certificate."""
    return services.issue(
        marriage_type,
        issuer=civil["mz_city"],
        holder_name="王五",
        holder_id=OTHER_ID,
        data={"spouse_name": "赵六", "registered_on": "2025-01-02"},
        actor="cli:test",
    )


@pytest.fixture
def shop_type(civil):
    """食品经营许可证: enterprise holder, unconditional sharing, one personal item."""
    from dgov.licenses.models import LicenceType

    return LicenceType.objects.create(
        code="11100000000013127D002",
        name="食品经营许可证",
        department=civil["mz"],
        issuer_kind="MZ",
        holder_kind="enterprise",
        items=[
            {"name": "premises", "label": "经营场所", "type": "string", "required": True},
            {"name": "contact", "label": "联系人", "type": "string", "sensitivity": "personal"},
        ],
        validity={"years": 5},
        sharing_type="unconditional",
    )


@pytest.fixture
def shop(shop_type, civil):
    """The company's food business licence."""
    return services.issue(
        shop_type,
        issuer=civil["mz_city"],
        holder_name="济南泉城食品有限公司",
        holder_id=COMPANY_USCC,
        data={"premises": "济南市历下区泉城路1号", "contact": "孙七"},
        actor="cli:test",
    )


class Caller:
    """An API client (HTTP Basic) posting JSON."""

    def __init__(self, http, client_id, secret):
        self.http = http
        self.auth = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()

    def post(self, path, body):
        return self.http.post(
            path, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=self.auth
        )

    def get(self, path):
        return self.http.get(path, HTTP_AUTHORIZATION=self.auth)


@pytest.fixture
def callers(client, civil):
    """API clients: ``ga`` (licences:use), ``ga_read`` (licences:read only), ``mz`` (licences:use)."""
    from dgov.identity.services import create_api_client

    specs = {"ga": ("ga", ["licences:use"]), "ga_read": ("ga", ["licences:read"]), "mz": ("mz", ["licences:use"])}
    out = {}
    for name, (org, scopes) in specs.items():
        api_client, secret = create_api_client(
            f"{name} 用证系统", civil[org], scopes, actor="system:test", client_id=f"use-{name.replace('_', '-')}"
        )
        out[name] = Caller(client, api_client.client_id, secret)
    return out


def problem(response, status):
    """The problem+json body of an error answer with this status."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()
