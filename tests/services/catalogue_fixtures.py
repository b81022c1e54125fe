"""Fixtures of the service-catalogue tests: the demo province's generated departments and the demo catalogue."""

import pytest

PASSWORD = "Services-test-passw0rd"


@pytest.fixture
def orgs(lixia):
    """Every generated department of the demo province (province, 济南, 历下区), by code."""
    from dgov.kernel.services.organizations import generate_demo_organizations

    return {org.code: org for org in generate_demo_organizations("370000", actor="system:test")}


@pytest.fixture
def seeded(orgs, settings):
    """The demo catalogue seeded as `dgov demo` does (licence types, items, bundles, implementations, one drift)."""
    from dgov.services import demo

    settings.DEMO_PROVINCE_CODE = "370000"
    summary = demo.seed(province_code="370000")
    return summary


@pytest.fixture
def people(orgs, django_user_model):
    """Officials of the provincial 大数据局, the provincial 市场监管局, 历下区市场监管局; an admin; a citizen."""

    def official(username, code):
        return django_user_model.objects.create_user(
            username=username, password=PASSWORD, kind="official", department=orgs[code]
        )

    return {
        "dsj": official("dsj", "370000-DSJ"),
        "scjg": official("scjg", "370000-SCJG"),
        "county_scjg": official("county-scjg", "370102-SCJG"),
        "admin": django_user_model.objects.create_user(username="adm", password=PASSWORD, kind="admin"),
        "citizen": django_user_model.objects.create_user(username="cit", password=PASSWORD, kind="person"),
    }


@pytest.fixture
def licence_types(orgs):
    """The demo licence types (营业执照 SCJG:001 …) that catalogue entries refer to."""
    from dgov.licenses import catalogue as licence_catalogue

    entries = licence_catalogue.read_type_file(licence_catalogue.DEMO_TYPES)
    assert licence_catalogue.load_types(entries, actor="system:test", province_code="370000").ok
