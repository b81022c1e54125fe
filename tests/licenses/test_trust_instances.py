"""Mutual recognition (互认) between two real dgov instances.

Here is the province (``370000``, the live server of this test run); there is the "national" style
peer ``110000`` (北京), a second dgov in a subprocess with its own database and keys
(``tests/instances.py``). Each registers the other as a federation peer with the CLI, pinning the
keys the other's ``dgov exchange peer keys`` printed. A licence issued there verifies here once
here has synced there's trust list — status fetched over HTTP from there — and shows as revoked
here after there revokes it and the cached status list expires; the same works the other way round.
"""

import datetime
import io
import json
import re

import pytest
from django.core.management import call_command
from django.utils import timezone
from instances import Instance, free_port

from dgov.licenses import credentials, services, verification
from dgov.licenses.models import RemoteStatusList, TrustedIssuer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

HERE, THERE = "370000", "110000"
HERE_NAME, THERE_NAME = "山东省政务服务平台", "北京市政务服务平台"

THERE_SETUP = """
import datetime
from dgov.kernel.models import Division, Organization
from dgov.kernel.validators import make_resident_id, make_uscc
from dgov.licenses import credentials, services
from dgov.licenses.models import LicenceType, StatusList
bj = Division.objects.create(code="110000", name="北京市", full_name="北京市", level=1)
mz = Organization.objects.create(name="北京市民政局", code="110000-MZ", uscc=make_uscc("1", "1", "110000", serial=5),
                                 level=1, division=bj, kind="MZ")
marriage = LicenceType.objects.create(code="11100000000013127D001", name="结婚证", department=mz, issuer_kind="MZ",
    holder_kind="person", items=[{"name": "spouse_name", "label": "配偶姓名", "type": "string", "required": True}],
    validity={}, sharing_type="conditional")
licence = services.issue(marriage, issuer=mz, holder_name="王五", holder_id=make_resident_id(
    "110101", datetime.date(1990, 1, 1), 7), data={"spouse_name": "赵六"}, actor="system:test")
for status_list in StatusList.objects.all():
    credentials.publish(status_list)
print("IDENTIFIER=" + licence.identifier)
print("JWS=" + services.current_credential(licence).jws)
"""

THERE_REVOKE = """
from dgov.licenses import credentials, services
from dgov.licenses.models import Licence, StatusList
licence = Licence.objects.get(identifier="{identifier}")
services.revoke(licence, actor="system:test", reason="婚姻登记撤销")
for status_list in StatusList.objects.filter(dirty=True):
    credentials.publish(status_list)
print("REVOKED")
"""

THERE_VERIFY = """
import json
from dgov.licenses import verification
result = verification.verify("{token}")
print("RESULT=" + json.dumps(dict(verdict=result.verdict, recognized_by=result.summary.recognized_by
    if result.summary else None, failed=[c.reason_code for c in result.failed]), ensure_ascii=False))
"""


def _value(out: str, name: str) -> str:
    return re.search(rf"^{name}=(.*)$", out, re.M).group(1)


@pytest.fixture
def there(tmp_path_factory):
    """The peer instance (110000): set up with a licence, not yet serving."""
    root = tmp_path_factory.mktemp("there")
    instance = Instance(
        root,
        free_port(),
        no_migrations=True,
        name="there",
        env={"DGOV_FEDERATION_INSTANCE": THERE, "DGOV_DEMO_PROVINCE": THERE, "DGOV_FEDERATION_TIMEOUT": "20"},
    )
    instance.migrate()
    out = instance.run("shell", "-c", THERE_SETUP)
    instance.identifier, instance.jws = _value(out, "IDENTIFIER"), _value(out, "JWS")
    yield instance
    instance.stop()


def test_a_licence_issued_there_verifies_here_and_its_revocation_shows(
    there, live_server, settings, tmp_path, marriage_type, civil, client
):
    settings.SITE_URL = live_server.url
    settings.FEDERATION_INSTANCE = HERE

    # 1. Each registers the other as a peer with the CLI, pinning the keys the other printed.
    here_keys, there_keys = tmp_path / "here-keys.json", tmp_path / "there-keys.json"
    out = io.StringIO()
    call_command("exchange", "peer", "keys", stdout=out)
    here_keys.write_text(out.getvalue())
    there_keys.write_text(there.run("exchange", "peer", "keys"))
    there.run(
        "exchange", "peer", "add", HERE, "--name", HERE_NAME, "--url", live_server.url, "--division", THERE,
        "--keys-file", str(here_keys),
    )  # fmt: skip
    there.serve()
    call_command(
        "exchange", "peer", "add", THERE, "--name", THERE_NAME, "--url", there.url, "--division", HERE,
        "--keys-file", str(there_keys), stdout=io.StringIO(),
    )  # fmt: skip

    # 2. Before the trust list is synced, there's licence is from an unknown issuer here.
    assert verification.verify(there.jws).verdict == "unknown_issuer"

    # 3. Here syncs there's trust list (CLI): its issuer is recognized, audited.
    out = io.StringIO()
    call_command("licences", "trust", "sync", "--peer", THERE, stdout=out)
    report = json.loads(out.getvalue())
    assert report["ok"] and report["added"] == 1 and report["refused"] == []
    issuer = TrustedIssuer.objects.get()
    assert issuer.name == "北京市民政局" and issuer.issuer_id.startswith(there.url + "/licences/issuers/")
    assert issuer.licence_types == [{"code": "11100000000013127D001", "name": "结婚证"}]

    # 4. The licence verifies here — status fetched from there — naming the peer, on the page and the API.
    result = verification.verify(there.jws)
    assert result.valid, [(c.code, c.reason_code) for c in result.failed]
    assert result.summary.recognized_by == THERE_NAME and result.summary.issuer_name == "北京市民政局"
    assert RemoteStatusList.objects.filter(url__startswith=there.url + "/licences/status/").count() == 2
    page = client.post("/licences/verify/", {"credential": there.jws}).content.decode()
    assert 'data-verdict="valid"' in page and THERE_NAME in page
    answer = client.post("/api/v1/licences/verify/", {"credential": there.jws}, content_type="application/json")
    assert answer.json()["licence"]["recognized_by"] == THERE_NAME

    # 5. The other way round: there syncs here's list and verifies a licence issued here.
    local = services.issue(
        marriage_type,
        issuer=civil["mz_city"],
        holder_name="张三",
        holder_id="370102199001011231",
        data={"spouse_name": "李四", "registered_on": "2026-05-20"},
        actor="system:test",
    )
    credentials.publish_due()
    synced = json.loads(there.run("licences", "trust", "sync", "--peer", HERE).splitlines()[0])
    assert synced["ok"] and synced["added"] == 1
    token = services.current_credential(local).jws
    mutual = json.loads(_value(there.run("shell", "-c", THERE_VERIFY.format(token=token)), "RESULT"))
    assert mutual == {"verdict": "valid", "recognized_by": HERE_NAME, "failed": []}

    # 6. There revokes its licence and publishes its status list; here sees it once the cached list expires.
    assert "REVOKED" in there.run("shell", "-c", THERE_REVOKE.format(identifier=there.identifier))
    assert verification.verify(there.jws).valid  # the cached list stands for its ttl
    RemoteStatusList.objects.update(fetched_at=timezone.now() - datetime.timedelta(hours=1))
    result = verification.verify(there.jws)
    assert result.verdict == "revoked"
    assert {c.reason_code for c in result.failed} == {"status.revoked"}
