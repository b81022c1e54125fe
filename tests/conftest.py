"""Shared fixtures for the whole suite."""

from pathlib import Path

import pytest

import dgov

TEST_PASSWORD = "Dgov-test-passw0rd"


def pytest_sessionstart(session):
    """Compile stale translation catalogues (.po → .mo) so English pages work without `make setup`."""
    from dgov.kernel.management.commands.i18n_compile import compile_po, is_stale

    for po_path in sorted(Path(dgov.__file__).parent.glob("**/locale/*/LC_MESSAGES/*.po")):
        if is_stale(po_path):
            compile_po(po_path)


@pytest.fixture(autouse=True)
def _default_language():
    """Every test starts and ends in the default language (a page asked for in English leaves the thread in it)."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _stop_exchange_log_writer():
    """Stop the exchange log's writer thread after each test: its connection must not outlive the test database."""
    yield
    from dgov.exchange import log

    log.writer.shutdown()


@pytest.fixture
def user_password():
    """The password of the users made by the fixtures below."""
    return TEST_PASSWORD


@pytest.fixture
def province(db):
    """The demo province's division (山东省, 370000) with one city below it."""
    from dgov.kernel.models import Division

    province = Division.objects.create(code="370000", name="山东省", full_name="山东省", level=Division.Level.PROVINCE)
    Division.objects.create(
        code="370100", name="济南市", full_name="山东省济南市", level=Division.Level.CITY, parent=province
    )
    return province


@pytest.fixture
def department(province):
    """A provincial department (省公安厅) in the demo province."""
    from dgov.kernel.models import Organization

    return Organization.objects.create(
        name="山东省公安厅",
        short_name="省公安厅",
        code="370000-GA",
        uscc="11370000004312345X",
        level=Organization.Level.PROVINCE,
        division=province,
    )


@pytest.fixture
def official(department, django_user_model):
    """An official of ``department``; log in with password ``TEST_PASSWORD``."""
    return django_user_model.objects.create_user(
        username="official1",
        password=TEST_PASSWORD,
        kind="official",
        display_name="张警官",
        department=department,
    )


@pytest.fixture
def citizen(db, django_user_model):
    """A natural person (not allowed on the workbench); password ``TEST_PASSWORD``."""
    return django_user_model.objects.create_user(
        username="citizen1", password=TEST_PASSWORD, kind="person", display_name="李群众"
    )


@pytest.fixture
def make_departments(db):
    """A factory: ``make_departments(specs)`` creates one department per ``(key, code, name, kind, level, division)``.

    Returns ``{key: Organization}``; the USCCs are valid and distinct (serial numbers in spec order).
    """
    from dgov.kernel.models import Organization
    from dgov.kernel.validators import make_uscc

    def make(specs):
        return {
            key: Organization.objects.create(
                name=name,
                code=code,
                uscc=make_uscc("1", "1", division.code, serial=serial),
                level=level,
                division=division,
                kind=kind,
            )
            for serial, (key, code, name, kind, level, division) in enumerate(specs, start=1)
        }

    return make


@pytest.fixture
def zh_hans():
    """Chinese (zh-hans) messages for the test, whatever language an earlier test left active."""
    from django.utils import translation

    with translation.override("zh-hans"):
        yield


@pytest.fixture
def lixia(province):
    """The county 历下区 (370102) below the demo province's city 济南 (370100)."""
    from dgov.kernel.models import Division

    city = Division.objects.get(code="370100")
    return Division.objects.create(code="370102", name="历下区", full_name="济南市历下区", level=3, parent=city)


@pytest.fixture
def make_users(django_user_model):
    """A factory: ``make_users(orgs, prefix, password)`` makes an official of each department, an admin and a citizen.

    Returns ``{key: user}`` with the keys of ``orgs`` plus ``admin`` and ``citizen``; usernames are
    ``<prefix>-<key>``.
    """

    def make(orgs, prefix: str, password: str) -> dict:
        made = {
            key: django_user_model.objects.create_user(
                username=f"{prefix}-{key}",
                password=password,
                kind="official",
                display_name=f"{org.name}干部",
                department=org,
            )
            for key, org in orgs.items()
        }
        made["admin"] = django_user_model.objects.create_user(
            username=f"{prefix}-admin", password=password, kind="admin"
        )
        made["citizen"] = django_user_model.objects.create_user(
            username=f"{prefix}-citizen", password=password, kind="person"
        )
        return made

    return make
