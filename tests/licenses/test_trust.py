"""Mutual recognition (互认): this instance's signed trust list, importing a peer's, and verifying its licences.

The peer is a fake: its own federation SM2 key (pinned here as an ``exchange.Peer``), issuers with
their own keys, credentials and status lists built with the platform's own VC code under the peer's
site URL, and a trust list signed by its key. ``trust.http_get`` is replaced by a function that
serves the peer's documents by URL and counts the fetches (the two-instance test uses real HTTP).
"""

import datetime
import http.server
import json
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from dgov.exchange import federation
from dgov.exchange.models import Peer
from dgov.kernel.crypto import SM2PrivateKey
from dgov.kernel.models import AuditRecord, Organization
from dgov.kernel.validators import make_uscc
from dgov.licenses import credentials, keys, services, statuslist, trust, verification
from dgov.licenses.models import RemoteStatusList, StatusList, TrustedIssuer
from dgov.oidc import jose

pytestmark = pytest.mark.django_db

PEER_SITE = "http://peer.example"
PEER_CODE = "110000"
PEER_NAME = "北京市政务服务平台"
TYPE_CODE = "11100000000013127D001"


@pytest.fixture(autouse=True)
def _fresh_caches():
    trust.clear_cache()
    trust._attempted.clear()
    verification.clear_cache()
    keys.clear_cache()
    yield
    trust.clear_cache()
    verification.clear_cache()


class FakePeer:
    """Another dgov instance, in memory: federation key, issuers, trust list, credentials and status lists."""

    def __init__(self, code=PEER_CODE, site=PEER_SITE, base=None):
        self.code, self.site, self.base = code, site, base or site
        self.key = SM2PrivateKey.generate()
        self.kid = f"federation-{code}-1"
        self.issuers = {}  # uscc -> (name, jose private key)
        self.documents = {}  # url -> bytes
        self.fetched = []  # urls asked for
        self.lists = {}  # uscc -> (revocation list id, suspension list id)
        self.down = False

    # --- what the peer publishes ---

    def keys_document(self, key=None, kid=None):
        key = key or self.key
        return {
            "format": federation.KEYS_FORMAT,
            "instance": self.code,
            "keys": [{"kid": kid or self.kid, "public_key": key.public_key().to_pem().decode()}],
        }

    def add_issuer(self, serial, name, alg="SM2"):
        uscc = make_uscc("1", "1", "110000", serial=serial)
        self.issuers[uscc] = (name, jose.generate(alg, f"{uscc}-{alg.lower()}-1"))
        self.lists[uscc] = (2 * serial - 1, 2 * serial)  # its revocation and suspension list ids
        return uscc

    def entry(self, uscc):
        name, key = self.issuers[uscc]
        return {
            "id": f"{self.site}/licences/issuers/{uscc}",
            "name": name,
            "uscc": uscc,
            "jwks": {"keys": [key.public().to_dict()]},
            "licenceTypes": [{"code": TYPE_CODE, "name": "结婚证"}],
            "statusListPrefix": f"{self.site}/licences/status/",
        }

    def payload(self, *, issued=None, validity=datetime.timedelta(days=1), entries=None, instance=None):
        issued = (issued or timezone.now()).replace(microsecond=0)
        return trust.build_payload(
            instance=instance or self.code,
            site=self.site,
            issuers=entries if entries is not None else [self.entry(uscc) for uscc in self.issuers],
            issued=issued,
            next_update=issued + validity,
        )

    def sign(self, payload, key=None, kid=None):
        return trust.sign_document(payload, kid or self.kid, (key or self.key).sign)

    def publish(self, payload=None, *, document=None, key=None, **kwargs):
        document = document or self.sign(payload or self.payload(**kwargs), key=key)
        self.documents[self.base + trust.PATH] = json.dumps(document).encode()
        return document

    def _organization(self, uscc):
        return Organization(name=self.issuers[uscc][0], uscc=uscc)

    def credential(self, uscc, serial="2026000001", *, status=None, valid_until=None):
        """A credential of the issuer (status index 17 in its two lists), as that instance would issue it."""
        _name, key = self.issuers[uscc]
        status = status or tuple((list_id, 17) for list_id in self.lists[uscc])
        with override_settings(SITE_URL=self.site):
            identifier = credentials.make_identifier(TYPE_CODE, uscc, serial)
            vc = credentials.build_vc(
                identifier=identifier,
                version=1,
                issuer=self._organization(uscc),
                type_code=TYPE_CODE,
                type_name="结婚证",
                number=serial,
                holder_kind="person",
                holder_name="王五",
                holder_id="110101199001011237",
                data={"spouse_name": "赵六"},
                issued_at=timezone.now(),
                valid_from=timezone.localdate(),
                valid_until=valid_until,
                revocation=status[0],
                suspension=status[1],
            )
        return credentials.sign_vc(vc, key)

    def publish_status(self, uscc, list_id, purpose, *, set_bits=(), key=None):
        """Sign and serve status list ``list_id`` of the issuer with ``set_bits`` set."""
        bits = bytearray(statuslist.MIN_SIZE // 8)
        for index in set_bits:
            bits[index // 8] |= 0x80 >> (index % 8)
        row = StatusList(pk=list_id, organization=self._organization(uscc), purpose=purpose, bits=bytes(bits))
        with override_settings(SITE_URL=self.site):
            vc = credentials.status_list_vc(row)
            url = credentials.status_list_url(list_id)
        jws = jose.sign(vc, key or self.issuers[uscc][1], typ="vc+jwt", header={"cty": "vc"})
        self.documents[url] = jws.encode()
        return url

    def publish_both(self, uscc, *, revoked=(), suspended=()):
        revocation, suspension = self.lists[uscc]
        self.publish_status(uscc, revocation, "revocation", set_bits=revoked)
        self.publish_status(uscc, suspension, "suspension", set_bits=suspended)

    # --- serving ---

    def get(self, url, *, accept, limit, timeout=None):
        self.fetched.append(url)
        if self.down or url not in self.documents:
            raise trust.FetchError("unavailable")
        return self.documents[url]


@pytest.fixture
def fake(monkeypatch):
    peer = FakePeer()
    monkeypatch.setattr(trust, "http_get", peer.get)
    return peer


@pytest.fixture
def peer(fake, province):
    return federation.add_peer(
        code=PEER_CODE,
        name=PEER_NAME,
        base_url=PEER_SITE,
        division=province,
        keys=fake.keys_document(),
        actor="system:test",
    )


@pytest.fixture
def recognized(fake, peer):
    """The fake peer with two issuers, its trust list synced here, their status lists published."""
    first = fake.add_issuer(1, "北京市民政局")
    second = fake.add_issuer(2, "北京市公安局", alg="ES256")
    fake.publish()
    report = trust.sync_peer(peer, actor="system:test")
    assert report.ok, report.as_dict()
    fake.publish_both(first)
    fake.publish_both(second)
    return first, second


def _codes(result):
    return {check.code: (check.status, check.reason_code) for check in result.checks}


def _audits(action):
    return list(AuditRecord.objects.filter(action=action).order_by("seq"))


# --- publishing ----------------------------------------------------------------------------------------


def _issue(marriage_type, issuer):
    return services.issue(
        marriage_type,
        issuer=issuer,
        holder_name="张三",
        holder_id="370102199001011231",
        data={"spouse_name": "李四", "registered_on": "2026-05-20"},
        actor="cli:test",
    )


def test_the_trust_list_names_this_instances_issuers_signed_with_its_federation_key(client, marriage_type, civil):
    _issue(marriage_type, civil["mz_city"])
    keys.active_key(civil["mz"], "ES256")
    revoked = keys.active_key(civil["ga"], "SM2")[0]
    keys.revoke_key(revoked.kid, actor="system:test")  # 公安厅 keeps only its replacement key
    old = keys.active_key(civil["mz"], "SM2")[0].kid
    keys.revoke_key(old, actor="system:test")

    response = client.get("/licences/trust-list.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/jose+json")
    assert response["Access-Control-Allow-Origin"] == "*" and "max-age=60" in response["Cache-Control"]
    document = response.json()
    assert set(document) == {"protected", "payload", "signature"}
    header = json.loads(jose.b64url_decode(document["protected"]))
    assert header["alg"] == "SM2" and header["typ"] == "dgov-trust-list+json"
    assert header["kid"] in [key["kid"] for key in federation.keys_document()["keys"]]

    # Verified exactly as a peer does: against this instance's published (pinned) federation keys.
    me = Peer(code=federation.instance_code(), keys=federation.parse_keys(federation.keys_document()))
    payload = trust.verify_document(response.content, me)
    assert payload["format"] == "dgov-trust-list-v1" and payload["site"] == credentials.site_url()
    issued = datetime.datetime.fromisoformat(payload["issued"])
    assert payload["sequence"] == trust.sequence_of(issued)
    assert datetime.datetime.fromisoformat(payload["nextUpdate"]) - issued == datetime.timedelta(days=1)
    by_uscc = {entry["uscc"]: entry for entry in payload["issuers"]}
    assert set(by_uscc) == {civil["mz"].uscc, civil["mz_city"].uscc, civil["ga"].uscc}
    city = by_uscc[civil["mz_city"].uscc]
    assert city["id"] == credentials.issuer_url(civil["mz_city"]) and city["name"] == "济南市民政局"
    assert city["licenceTypes"] == [{"code": marriage_type.code, "name": "结婚证"}]
    assert city["statusListPrefix"] == credentials.site_url() + "/licences/status/"
    assert city["jwks"] == keys.issuer_jwks(civil["mz_city"])
    kids = [key["kid"] for key in by_uscc[civil["mz"].uscc]["jwks"]["keys"]]
    assert old not in kids and len(kids) == 2  # ES256 and the SM2 replacement; the revoked key left out
    assert by_uscc[civil["mz"].uscc]["licenceTypes"] == []

    # A changed byte anywhere breaks the signature.
    tampered = dict(document, payload=document["payload"][:-2] + ("A" if document["payload"][-2] != "A" else "B") + "x")
    with pytest.raises(trust.TrustListError) as exc:
        trust.verify_document(tampered, me)
    assert exc.value.code in ("signature_invalid", "malformed")


def test_the_cli_shows_this_instances_trust_list(civil, capsys):
    keys.active_key(civil["mz"], "SM2")
    call_command("licences", "trust", "show")
    payload = json.loads(capsys.readouterr().out)
    assert [entry["uscc"] for entry in payload["issuers"]] == [civil["mz"].uscc]


# --- importing -----------------------------------------------------------------------------------------


def test_a_peers_trust_list_is_imported_and_its_licences_verify_here(fake, peer, recognized):
    first, second = recognized
    rows = {row.uscc: row for row in TrustedIssuer.objects.all()}
    assert set(rows) == {first, second}
    row = rows[first]
    assert (row.peer, row.name, row.status) == (peer, "北京市民政局", "active")
    assert row.issuer_id == f"{PEER_SITE}/licences/issuers/{first}"
    assert row.licence_types == [{"code": TYPE_CODE, "name": "结婚证"}]
    assert row.valid_until > timezone.now() + datetime.timedelta(hours=23)
    added = _audits("licenses.trust.add")
    assert len(added) == 2 and {a.detail["uscc"] for a in added} == {first, second}
    assert all(a.detail["peer"] == PEER_CODE and a.actor_label == "system:test" for a in added)

    for uscc in (first, second):
        result = verification.verify(fake.credential(uscc))
        assert result.valid, [(c.code, c.reason_code, c.reason) for c in result.failed]
        codes = _codes(result)
        assert codes["issuer"] == ("passed", "issuer.recognized")
        assert codes["record"] == ("passed", "record.not_registered")
        assert codes["revocation"] == ("passed", "status.ok") and codes["suspension"] == ("passed", "status.ok")
        issuer_check = next(c for c in result.checks if c.code == "issuer")
        assert PEER_NAME in issuer_check.reason
        assert result.summary.recognized_by == PEER_NAME and result.as_dict()["licence"]["recognized_by"] == PEER_NAME
        assert result.summary.holder_name == "王*"
    assert RemoteStatusList.objects.count() == 4


def test_the_verify_page_and_api_name_the_recognizing_peer(client, fake, recognized):
    token = fake.credential(recognized[0])
    page = client.post("/licences/verify/", {"credential": token})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-verdict="valid"' in html and 'data-testid="recognized-by"' in html and PEER_NAME in html
    answer = client.post("/api/v1/licences/verify/", {"credential": token}, content_type="application/json")
    assert answer.status_code == 200
    body = answer.json()
    assert body["verdict"] == "valid" and body["licence"]["recognized_by"] == PEER_NAME


def test_an_unknown_or_unpinned_signature_is_refused_and_audited(fake, peer):
    fake.add_issuer(1, "北京市民政局")
    stranger = SM2PrivateKey.generate()
    fake.publish(key=stranger)  # same kid, another key
    report = trust.sync_peer(peer, actor="system:test")
    assert (report.ok, report.code) == (False, "signature_invalid")
    document = fake.sign(fake.payload())
    document["payload"] = fake.sign(fake.payload(entries=[]))["payload"]  # another payload under this signature
    fake.publish(document=document)
    assert trust.sync_peer(peer).code == "signature_invalid"
    fake.publish(document=fake.sign(fake.payload(), kid="federation-110000-2"))  # a kid not pinned
    assert trust.sync_peer(peer).code == "signature_invalid"
    assert not TrustedIssuer.objects.exists()
    refused = _audits("licenses.trust.refuse")
    assert [(a.outcome, a.detail["code"]) for a in refused] == [("denied", "signature_invalid")] * 3


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (dict(instance="120000"), "wrong_instance"),
        (dict(issued=timezone.now() - datetime.timedelta(days=2)), "expired"),
        (dict(issued=timezone.now() + datetime.timedelta(hours=1)), "future"),
    ],
)
def test_a_list_of_another_instance_or_out_of_date_is_refused(fake, peer, change, code):
    fake.add_issuer(1, "北京市民政局")
    fake.publish(**change)
    report = trust.sync_peer(peer)
    assert (report.ok, report.code) == (False, code)
    assert not TrustedIssuer.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"protected": "e30", "payload": "e30"}',
        json.dumps({"protected": "e30", "payload": "e30", "signature": "AA", "extra": 1}).encode(),
        json.dumps({"protected": "!!", "payload": "e30", "signature": "AA"}).encode(),
        b"x" * (trust.MAX_LIST_BYTES + 1),
    ],
)
def test_malformed_documents_are_refused(fake, peer, body):
    fake.documents[PEER_SITE + trust.PATH] = body
    report = trust.sync_peer(peer)
    assert not report.ok and report.code in ("malformed", "too_large")
    assert not TrustedIssuer.objects.exists()


def test_a_well_signed_payload_of_the_wrong_shape_is_refused(fake, peer):
    for payload in ({"format": "other"}, {**fake.payload(), "sequence": -1}, {**fake.payload(), "issuers": {}}):
        fake.publish(payload)
        assert trust.sync_peer(peer).code == "malformed"


def test_an_older_list_is_refused_as_a_rollback(fake, peer):
    first = fake.add_issuer(1, "北京市民政局")
    old = fake.sign(fake.payload(issued=timezone.now() - datetime.timedelta(hours=1)))
    fake.publish()
    assert trust.sync_peer(peer).ok
    sequence = TrustedIssuer.objects.get(uscc=first).list_version
    fake.issuers.clear()
    fake.publish(document=old)  # an attacker replays a genuine older list
    report = trust.sync_peer(peer, actor="system:test")
    assert (report.ok, report.code) == (False, "rollback")
    assert TrustedIssuer.objects.get(uscc=first).list_version == sequence
    refused = _audits("licenses.trust.refuse")[-1]
    assert refused.outcome == "denied" and refused.detail["code"] == "rollback"
    assert refused.detail["accepted"] == sequence


def test_issuers_left_out_are_removed_and_stop_verifying_and_may_come_back(fake, peer, recognized):
    first, second = recognized
    token = fake.credential(second)
    assert verification.verify(token).valid
    fake.issuers.pop(second)
    fake.publish(issued=timezone.now() + datetime.timedelta(seconds=1))
    report = trust.sync_peer(peer, actor="system:test")
    assert report.ok and report.removed == [f"{PEER_SITE}/licences/issuers/{second}"] and report.unchanged == 1
    assert TrustedIssuer.objects.get(uscc=second).status == "removed"
    assert not RemoteStatusList.objects.filter(issuer__uscc=second).exists()
    [removed] = _audits("licenses.trust.remove")
    assert removed.detail["uscc"] == second
    result = verification.verify(token)
    assert result.verdict == "unknown_issuer" and _codes(result)["issuer"] == ("failed", "issuer.unknown")

    # Removed rows keep the newest sequence: the list that still named the issuer cannot be replayed.
    fake.add_issuer(2, "北京市公安局", alg="ES256")
    fake.publish(issued=timezone.now() - datetime.timedelta(minutes=5))
    assert trust.sync_peer(peer).code == "rollback"
    fake.issuers[second] = fake.issuers.pop(second)
    fake.publish(issued=timezone.now() + datetime.timedelta(seconds=2))
    report = trust.sync_peer(peer, actor="system:test")
    assert report.ok and len(report.updated) == 1
    assert TrustedIssuer.objects.get(uscc=second).status == "active"
    [update] = _audits("licenses.trust.update")
    assert update.detail["changed"] == ["jwks", "status"] and update.detail["before"]["status"] == "removed"


def test_a_changed_key_set_is_an_audited_update(fake, peer, recognized):
    first, _second = recognized
    old_token = fake.credential(first)
    name, _key = fake.issuers[first]
    fake.issuers[first] = (name, jose.generate("SM2", f"{first}-sm2-2"))  # the peer revoked the old key
    fake.publish(issued=timezone.now() + datetime.timedelta(seconds=1))
    report = trust.sync_peer(peer)
    assert report.ok and len(report.updated) == 1
    [update] = _audits("licenses.trust.update")
    assert update.detail["changed"] == ["jwks"] and update.detail["kids"] == [f"{first}-sm2-2"]
    result = verification.verify(old_token)
    assert result.verdict == "invalid" and _codes(result)["key"] == ("failed", "key.unknown")
    fake.publish_both(first)
    assert verification.verify(fake.credential(first)).valid


def test_peers_cannot_shadow_local_identities(fake, peer, civil, province):
    local = fake.add_issuer(1, "北京市民政局")
    Organization.objects.filter(pk=civil["ga"].pk).update(uscc=local)  # the same USCC is registered here
    mirror_uscc = fake.add_issuer(2, "北京市公安局")
    Organization.objects.create(
        name="北京市公安局", code=f"{PEER_CODE}:110000-GA", uscc=mirror_uscc, level=1, division=province, kind="PEER"
    )  # this peer's own mirror department: the same entity, accepted
    bad = fake.add_issuer(3, "北京市卫健委")
    entries = [fake.entry(local), fake.entry(mirror_uscc), fake.entry(bad), fake.entry(bad)]
    entries.append({**fake.entry(bad), "id": f"{PEER_SITE}/licences/issuers/{local}"})  # id of another USCC
    entries.append({**fake.entry(bad), "jwks": {"keys": [{"kty": "oct", "k": "AA", "alg": "HS256", "kid": "x"}]}})
    entries.append({**fake.entry(bad), "statusListPrefix": "http://elsewhere.example/licences/status/"})
    entries.append("not an entry")
    fake.publish(entries=entries)
    report = trust.sync_peer(peer)
    assert report.ok
    assert [r["reason"] for r in report.refused] == [
        "local_uscc",
        "duplicate",
        "bad_id",
        "no_keys",
        "bad_status_prefix",
        "malformed",
    ]
    assert set(TrustedIssuer.objects.values_list("uscc", flat=True)) == {mirror_uscc, bad}
    assert "拒绝 6 个条目" in report.message and f"{local}：统一社会信用代码属于本平台已登记的组织" in report.message


def test_a_bad_entry_is_refused_for_what_it_is(fake, peer):
    bad = fake.add_issuer(3, "北京市卫健委")
    for change, reason in (
        ({"jwks": {"keys": [{"kty": "oct", "k": "AA", "alg": "HS256", "kid": "x"}]}}, "no_keys"),
        ({"statusListPrefix": "http://elsewhere.example/licences/status/"}, "bad_status_prefix"),
        ({"uscc": "123"}, "bad_id"),
        ({"name": ""}, "malformed"),
    ):
        fake.publish(entries=[{**fake.entry(bad), **change}], issued=timezone.now() + datetime.timedelta(seconds=1))
        report = trust.sync_peer(peer)
        assert report.ok and [r["reason"] for r in report.refused] == [reason]


def test_a_peer_cannot_claim_this_instances_issuers_or_another_peers(fake, peer, province, settings):
    uscc = fake.add_issuer(1, "北京市民政局")
    fake.site = settings.SITE_URL.rstrip("/")  # a list naming issuers at this instance's site
    fake.publish()
    fake.site = PEER_SITE
    report = trust.sync_peer(peer)
    assert report.ok and [r["reason"] for r in report.refused] == ["local_issuer"]

    fake.publish(issued=timezone.now() + datetime.timedelta(seconds=1))
    assert trust.sync_peer(peer).added
    other_fake = FakePeer(code="120000", base="http://tianjin.example")  # another peer lists the same issuer
    other_fake.issuers, other_fake.documents = fake.issuers, fake.documents
    other_fake.publish()
    other = federation.add_peer(
        code="120000",
        name="天津市平台",
        base_url="http://tianjin.example",
        division=province,
        keys=other_fake.keys_document(),
        actor="system:test",
    )
    report = trust.sync_peer(other)
    assert report.ok and [r["reason"] for r in report.refused] == ["other_peer"]
    assert TrustedIssuer.objects.get(uscc=uscc).peer == peer


def test_an_expired_list_or_a_suspended_peer_stops_recognition(fake, peer, recognized):
    token = fake.credential(recognized[0])
    assert verification.verify(token).valid
    TrustedIssuer.objects.update(valid_until=timezone.now() - datetime.timedelta(seconds=1))
    trust.clear_cache()
    assert verification.verify(token).verdict == "unknown_issuer"
    TrustedIssuer.objects.update(valid_until=timezone.now() + datetime.timedelta(hours=1))
    assert verification.verify(token).valid
    federation.suspend(peer, actor="system:test", reason="安全检查")
    assert verification.verify(token).verdict == "unknown_issuer"
    assert trust.sync_peer(peer).code == "peer_suspended"


# --- status from the issuer's own site -------------------------------------------------------------------


def test_status_lists_are_fetched_once_per_ttl_and_a_revocation_shows_after_it(fake, recognized, settings):
    first = recognized[0]
    token = fake.credential(first)
    fake.fetched.clear()
    assert verification.verify(token).valid
    assert sorted(fake.fetched) == [f"{PEER_SITE}/licences/status/1", f"{PEER_SITE}/licences/status/2"]
    cached = RemoteStatusList.objects.get(url=f"{PEER_SITE}/licences/status/1")
    assert cached.ttl_seconds == int(statuslist.publish_interval()) and cached.issuer.uscc == first

    fake.publish_both(first, revoked=[17])  # revoked there
    fake.fetched.clear()
    assert verification.verify(token).valid  # within the ttl the cached list stands
    assert fake.fetched == []
    RemoteStatusList.objects.update(fetched_at=timezone.now() - datetime.timedelta(seconds=cached.ttl_seconds + 1))
    result = verification.verify(token)
    assert result.verdict == "revoked" and _codes(result)["revocation"] == ("failed", "status.revoked")
    assert len(fake.fetched) == 2

    # The cache is bounded by LICENCE_REMOTE_STATUS_MAX_AGE whatever the list's ttl says.
    settings.LICENCE_REMOTE_STATUS_MAX_AGE = 0
    fake.fetched.clear()
    verification.verify(token)
    assert len(fake.fetched) == 2


def test_without_a_list_or_a_fresh_copy_the_status_is_unknown(fake, recognized):
    first = recognized[0]
    token = fake.credential(first)
    fake.down = True
    result = verification.verify(token)
    assert result.verdict == "status_unknown" and not result.valid
    assert _codes(result)["revocation"] == ("failed", "status.list_unavailable")
    reason = next(c for c in result.checks if c.code == "revocation").reason
    assert "无法从签发机构获取状态列表" in reason
    # A failed fetch is not retried at once (no amplification while the issuer is down).
    fake.fetched.clear()
    assert verification.verify(token).verdict == "status_unknown" and fake.fetched == []

    trust.clear_cache()
    fake.down = False
    assert verification.verify(token).valid  # fetched and cached
    fake.down = True
    assert verification.verify(token).valid  # a fresh copy stands in while the issuer is down
    RemoteStatusList.objects.update(fetched_at=timezone.now() - datetime.timedelta(hours=2))
    assert verification.verify(token).verdict == "status_unknown"  # a stale copy does not


def test_status_lists_come_only_from_the_issuers_own_site_signed_by_its_key(fake, recognized):
    first, second = recognized
    elsewhere = fake.credential(first, status=((1, 5), (2, 5)))
    header, claims, _sig = elsewhere.split(".")
    vc = json.loads(jose.b64url_decode(claims))
    for entry in vc["credentialStatus"]:
        entry["statusListCredential"] = "http://evil.example/licences/status/1"
    forged_status = credentials.sign_vc(vc, fake.issuers[first][1])  # the issuer itself points elsewhere
    fake.fetched.clear()
    result = verification.verify(forged_status)
    assert result.verdict == "status_unknown" and _codes(result)["revocation"][1] == "status.list_unknown"
    assert fake.fetched == []

    fake.publish_status(first, 1, "revocation", key=fake.issuers[second][1])  # signed by another issuer's key
    RemoteStatusList.objects.all().delete()
    result = verification.verify(fake.credential(first))
    assert result.verdict == "status_unknown" and _codes(result)["revocation"][1] == "status.list_untrusted"
    assert not RemoteStatusList.objects.filter(url=f"{PEER_SITE}/licences/status/1").exists()


def test_a_suspension_there_shows_here(fake, recognized):
    first = recognized[0]
    fake.publish_both(first, suspended=[17])
    RemoteStatusList.objects.all().delete()
    result = verification.verify(fake.credential(first))
    assert result.verdict == "suspended"


def test_local_licences_still_verify_through_the_local_register(marriage_type, civil, recognized):
    licence = _issue(marriage_type, civil["mz_city"])
    result = verification.verify(services.current_credential(licence).jws)
    assert result.valid and _codes(result)["issuer"] == ("passed", "issuer.trusted")
    assert _codes(result)["record"] == ("passed", "record.ok") and result.summary.recognized_by == ""


# --- worker, CLI, pages --------------------------------------------------------------------------------------


def test_the_worker_job_syncs_due_peers_once_per_interval(fake, peer, settings):
    fake.add_issuer(1, "北京市民政局")
    fake.publish()
    assert trust.sync_due() == 1 and TrustedIssuer.objects.count() == 1
    assert trust.sync_due() == 0  # synced just now
    trust._attempted.clear()
    assert trust.sync_due() == 0  # another process synced it: the fetch time says so
    later = timezone.now() + datetime.timedelta(seconds=settings.LICENCE_TRUST_SYNC_SECONDS + 1)
    trust._attempted.clear()
    fake.publish(issued=later - datetime.timedelta(seconds=1))
    assert trust.sync_due(now=later) == 1


def test_the_cli_syncs_and_lists(fake, peer, capsys):
    uscc = fake.add_issuer(1, "北京市民政局")
    fake.publish()
    call_command("licences", "trust", "sync", "--peer", PEER_CODE)
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["added"] == 1 and report["peer"] == PEER_CODE
    assert AuditRecord.objects.get(action="licenses.trust.add").actor_label.startswith("system:cli:")
    call_command("licences", "trust", "list", "--json")
    [row] = json.loads(capsys.readouterr().out)
    assert (row["peer"], row["uscc"], row["status"]) == (PEER_CODE, uscc, "active")
    call_command("licences", "trust", "list")
    assert uscc in capsys.readouterr().out
    fake.down = True
    with pytest.raises(CommandError):
        call_command("licences", "trust", "sync")
    assert json.loads(capsys.readouterr().out.splitlines()[0])["code"] == "unavailable"
    with pytest.raises(CommandError):
        call_command("licences", "trust", "sync", "--peer", "999999")


def test_the_workbench_page_lists_peers_issuers_and_data_administrators_sync(
    client, fake, peer, people_users, recognized
):
    client.force_login(people_users["mz"])
    page = client.get("/workbench/licences/trust/")
    assert page.status_code == 200
    html = page.content.decode()
    assert PEER_NAME in html and "北京市民政局" in html and "北京市公安局" in html
    assert "立即同步信任列表" not in html  # an ordinary department looks only
    refused = client.post("/workbench/licences/trust/sync/", {"peer": PEER_CODE})
    assert refused.status_code == 403
    assert AuditRecord.objects.get(action="licenses.trust.sync").outcome == "denied"

    client.force_login(people_users["dsj"])
    assert "立即同步信任列表" in client.get("/workbench/licences/trust/").content.decode()
    fake.publish(issued=timezone.now() + datetime.timedelta(seconds=1))
    done = client.post("/workbench/licences/trust/sync/", {"peer": PEER_CODE}, follow=True)
    assert done.status_code == 200 and "已同步信任列表" in done.content.decode()
    assert client.post("/workbench/licences/trust/sync/", {"peer": "nope"}).status_code == 404

    client.force_login(people_users["citizen"])
    assert client.get("/workbench/licences/trust/").status_code == 403
    client.logout()
    assert client.get("/workbench/licences/trust/").status_code == 302


# --- HTTP limits -----------------------------------------------------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", str(3000))
            self.end_headers()
            self.wfile.write(b"x" * 3000)
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/big")
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetches_follow_the_outbound_rules_and_limits(server, settings):
    assert trust.http_get(server + "/ok", accept="*/*", limit=10) == b"ok"
    with pytest.raises(trust.FetchError) as too_large:
        trust.http_get(server + "/big", accept="*/*", limit=1000)
    assert too_large.value.code == "too_large"
    with pytest.raises(trust.FetchError):  # redirects are not followed
        trust.http_get(server + "/redirect", accept="*/*", limit=10_000)
    for url in ("ftp://127.0.0.1/x", server + "/ok?x=1", "http://user@127.0.0.1/"):
        with pytest.raises(trust.FetchError):
            trust.http_get(url, accept="*/*", limit=10)
    settings.PRODUCTION = True
    with pytest.raises(trust.FetchError):  # plain http only to loopback in production
        trust.http_get("http://peer.example/licences/trust-list.json", accept="*/*", limit=10)
