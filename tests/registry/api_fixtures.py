"""Fixtures of the registry API tests: departments, a small person registry, records and API clients.

Imported with ``from api_fixtures import *`` by tests/registry/test_api*.py.
"""

import base64
import datetime
import json

import pytest

from dgov.kernel.validators import make_resident_id

REGISTRY = "t.person"
BASE = f"/api/v1/registries/data/{REGISTRY}/1"

FIELDS = [
    {
        "name": "id_number",
        "label": "居民身份证号码",
        "type": "resident_id",
        "sensitivity": "personal",
        "authority": "GA",
    },
    {"name": "name", "label": "姓名", "type": "string", "sensitivity": "personal", "authority": "GA", "required": True},
    {"name": "sex", "label": "性别", "type": "enum", "choices": ["男", "女"], "authority": "GA"},
    {"name": "birth_date", "label": "出生日期", "type": "date", "authority": "GA"},
    {"name": "division", "label": "户籍地", "type": "division_code", "authority": "GA", "required": True},
    {
        "name": "phone",
        "label": "手机号码",
        "type": "phone",
        "sensitivity": "personal",
        "lookup": True,
        "authority": "GA",
    },
    {"name": "address", "label": "住址", "type": "string", "sensitivity": "personal", "authority": "GA"},
    {
        "name": "marital_status",
        "label": "婚姻状况",
        "type": "enum",
        "choices": ["未婚", "已婚", "离婚", "丧偶"],
        "authority": "MZ",
    },
    {"name": "note", "label": "备注", "type": "string", "authority": "GA|WJ"},
]


def pid(seq: int, region: str = "370102") -> str:
    """A valid resident ID number born 1990-01-01 (odd seq: male)."""
    return make_resident_id(region, datetime.date(1990, 1, 1), seq)


def basic(client_id: str, secret: str) -> str:
    """An HTTP Basic Authorization header value."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.fixture
def api_orgs(province, make_departments):
    """Provincial GA, WJ, MZ, DSJ and SCJG; county GA of 历下区 (370102) and of 市中区 (370103)."""
    from dgov.kernel.models import Division

    city = Division.objects.get(code="370100")
    lixia = Division.objects.create(code="370102", name="历下区", full_name="济南市历下区", level=3, parent=city)
    shizhong = Division.objects.create(code="370103", name="市中区", full_name="济南市市中区", level=3, parent=city)
    specs = [
        ("ga", "370000-GA", "山东省公安厅", "GA", 1, province),
        ("wj", "370000-WJ", "山东省卫生健康委员会", "WJ", 1, province),
        ("mz", "370000-MZ", "山东省民政厅", "MZ", 1, province),
        ("dsj", "370000-DSJ", "山东省大数据局", "DSJ", 1, province),
        ("scjg", "370000-SCJG", "山东省市场监督管理局", "SCJG", 1, province),
        ("lixia", "370102-GA", "济南市公安局历下区分局", "GA", 3, lixia),
        ("shizhong", "370103-GA", "济南市公安局市中区分局", "GA", 3, shizhong),
    ]
    return make_departments(specs)


@pytest.fixture
def registry(api_orgs):
    """The test person registry (owner: provincial GA; division-scoped by ``division``)."""
    from dgov.registry import services

    return services.create_registry(
        code=REGISTRY,
        name="测试人口库",
        owner=api_orgs["ga"],
        library_code="population",
        identifier_field="id_number",
        scope_field="division",
        fields=FIELDS,
        actor="system:test",
    )


@pytest.fixture
def people(registry, api_orgs):
    """Three persons: 张三 (男, 历下区), 李四 (女, 市中区), 王五 (男, 历下区)."""
    from dgov.registry import services

    rows = [
        {
            "id_number": pid(11),
            "name": "张三",
            "sex": "男",
            "birth_date": "1990-01-01",
            "division": "370102",
            "phone": "13800000001",
            "address": "山东省济南市历下区泉城路1号",
            "note": "甲",
        },
        {
            "id_number": pid(22, "370103"),
            "name": "李四",
            "sex": "女",
            "birth_date": "1985-05-05",
            "division": "370103",
            "phone": "13800000002",
            "note": "乙",
        },
        {"id_number": pid(33), "name": "王五", "sex": "男", "birth_date": "1970-07-07", "division": "370102"},
    ]
    return [services.create_record(registry, row, actor="system:test", source=api_orgs["ga"]) for row in rows]


class Caller:
    """An API client with its Authorization header, and helpers for JSON calls."""

    def __init__(self, http, api_client, secret):
        self.http, self.client, self.auth = http, api_client, basic(api_client.client_id, secret)

    def call(self, method, path, body=None, *, raw=None, **extra):
        """Call the API; ``body`` is sent as JSON, ``raw`` as given."""
        kwargs = {"HTTP_AUTHORIZATION": self.auth, **extra}
        if body is not None or raw is not None:
            kwargs["data"] = raw if raw is not None else json.dumps(body)
            kwargs["content_type"] = "application/json"
        return getattr(self.http, method.lower())(path, **kwargs)

    def get(self, path, **extra):
        return self.call("GET", path, **extra)

    def post(self, path, body=None, **extra):
        return self.call("POST", path, body, **extra)

    def put(self, path, body=None, **extra):
        return self.call("PUT", path, body, **extra)

    def delete(self, path, **extra):
        return self.call("DELETE", path, **extra)


@pytest.fixture
def callers(client, api_orgs):
    """API clients by name: ga (read+write), ga_unmask, ga_ro (read only), wj, mz, lixia, shizhong, dsj, scjg."""
    from dgov.identity.services import create_api_client

    specs = {
        "ga": ("ga", ["registry:read", "registry:write"]),
        "ga_unmask": ("ga", ["registry:read", "registry:write", "registry:unmask"]),
        "ga_ro": ("ga", ["registry:read"]),
        "wj": ("wj", ["registry:read", "registry:write"]),
        "mz": ("mz", ["registry:read", "registry:write"]),
        "lixia": ("lixia", ["registry:read", "registry:write"]),
        "shizhong": ("shizhong", ["registry:read", "registry:write"]),
        "dsj": ("dsj", ["registry:read"]),
        "scjg": ("scjg", ["registry:read", "registry:write"]),
    }
    out = {}
    for name, (org, scopes) in specs.items():
        api_client, secret = create_api_client(
            f"{name} 业务系统", api_orgs[org], scopes, actor="system:test", client_id=name.replace("_", "-")
        )
        out[name] = Caller(client, api_client, secret)
    return out


def problem(response, status):
    """Assert a problem+json answer with this status and return its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    return body
