"""Verifying licences (证照核验): valid credentials and QR codes, and every kind of bad input reported as such.

Online against the register, offline from cached keys and published status lists alone (with
the database blocked). Whatever goes wrong, the verdict is never ``valid``.
"""

import base64
import datetime
import hashlib
import hmac
import json

import pytest
from django.utils import timezone
from hypothesis import given, settings, strategies

from dgov.licenses import credentials, keys, qr, services, verification
from dgov.licenses.models import StatusList
from dgov.oidc import jose

pytestmark = pytest.mark.django_db

HOLDER = "370102199001011231"
DATA = {"spouse_name": "李四", "registered_on": "2026-05-20"}


@pytest.fixture(autouse=True)
def _fresh_caches():
    verification.clear_cache()
    keys.clear_cache()
    yield
    verification.clear_cache()


def _issue(marriage_type, issuer, alg="SM2", **kwargs):
    return services.issue(
        marriage_type,
        issuer=issuer,
        holder_name="张三",
        holder_id=HOLDER,
        data=DATA,
        actor="cli:test",
        alg=alg,
        **kwargs,
    )


def _jws(licence):
    return services.current_credential(licence).jws


def _parts(token):
    head, body, sig = token.split(".")
    return json.loads(jose.b64url_decode(head)), json.loads(jose.b64url_decode(body)), sig


def _encode(header, claims, sig):
    enc = lambda data: jose.b64url_encode(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())  # noqa: E731
    return f"{enc(header)}.{enc(claims)}.{sig}"


def _codes(result):
    return {check.code: (check.status, check.reason_code) for check in result.checks}


def _failed(result):
    return {check.reason_code for check in result.failed}


def _offline(*organizations):
    """An offline verifier from what the platform publishes for these issuers (read before the DB is blocked)."""
    jwks = {credentials.issuer_url(org): keys.issuer_jwks(org) for org in organizations}
    lists = list(StatusList.objects.exclude(published="").values_list("published", flat=True))
    return jwks, lists


# --- valid ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["SM2", "ES256"])
def test_a_valid_credential_verifies_online_with_every_check(marriage_type, civil, alg, django_assert_max_num_queries):
    licence = _issue(marriage_type, civil["mz_city"], alg=alg)
    with django_assert_max_num_queries(6):
        result = verification.verify(_jws(licence))
    assert result.valid and result.verdict == "valid" and result.kind == "credential" and result.mode == "online"
    assert [check.code for check in result.checks] == [
        "input",
        "algorithm",
        "issuer",
        "key",
        "signature",
        "identifier",
        "validity",
        "revocation",
        "suspension",
        "record",
    ]
    assert all(check.status == "passed" for check in result.checks)
    summary = result.summary
    assert summary.identifier == licence.identifier and summary.version == 1
    assert summary.type_name == "结婚证" and summary.issuer_name == "济南市民政局"
    assert summary.holder_name == "张*" and summary.holder_id == "370102********1231"
    assert summary.valid_until is None
    answer = json.dumps(result.as_dict(), ensure_ascii=False)
    assert "张三" not in answer and HOLDER not in answer and "李四" not in answer


@pytest.mark.parametrize("alg", ["SM2", "ES256"])
def test_offline_verification_needs_no_database(
    marriage_type, civil, alg, django_db_blocker, django_assert_num_queries
):
    licence = _issue(marriage_type, civil["mz"], alg=alg)
    credentials.publish_due()
    jws, payload = _jws(licence), qr.qr_payload(licence)
    jwks, lists = _offline(civil["mz"])
    with django_assert_num_queries(0), django_db_blocker.block():
        verifier = verification.OfflineVerifier(jwks, lists)
        result = verifier.verify(jws)
        from_qr = verifier.verify(payload)
    assert result.valid and result.mode == "offline"
    assert "record" not in _codes(result)
    assert _codes(result)["revocation"] == ("passed", "status.ok")
    assert "状态列表发布于" in next(c.reason for c in result.checks if c.code == "revocation")
    assert result.summary.holder_name == "张*"
    assert from_qr.valid and from_qr.kind == "qr" and from_qr.summary.holder_name == ""  # no personal data in QR


def test_offline_verifier_takes_issuer_documents_and_a_url_mapping(marriage_type, civil):
    licence = _issue(marriage_type, civil["mz"])
    credentials.publish_due()
    issuer_id = credentials.issuer_url(civil["mz"])
    document = {"id": issuer_id, "name": "山东省民政厅", "jwks": keys.issuer_jwks(civil["mz"])}
    lists = {
        credentials.status_list_url(pk): published
        for pk, published in StatusList.objects.exclude(published="").values_list("pk", "published")
    }
    result = verification.OfflineVerifier({issuer_id: document}, lists).verify(_jws(licence))
    assert result.valid and result.summary.issuer_name == "山东省民政厅"
    # Offline through verify(): this platform's published data for the issuer named in the input.
    assert verification.verify(_jws(licence), online=False).valid


def test_qr_code_verifies_online_with_the_holder_masked_from_the_register(marriage_type, civil):
    licence = _issue(marriage_type, civil["mz_city"], number="J3701002026000001")
    url = qr.qr_url(licence)
    assert url.startswith(credentials.site_url() + "/licences/q/") and len(url) < 800
    _header, claims, _sig = _parts(url.rsplit("/", 1)[1])
    assert "张三" not in json.dumps(claims, ensure_ascii=False) and HOLDER not in json.dumps(claims)
    assert claims["sub"] == licence.identifier and claims["ver"] == 1 and "exp" not in claims
    result = verification.verify(url)
    assert result.valid and result.kind == "qr"
    assert result.summary.holder_name == "张*" and result.summary.number == "J3701002026000001"
    assert verification.verify(url.rsplit("/", 1)[1]).valid  # the payload alone
    svg = qr.qr_svg(licence)
    assert svg.startswith("<svg") and "</svg>" in svg
    assert qr.qr_png(licence).startswith(b"\x89PNG")


# --- tampering, forgery, wrong issuers and keys ---------------------------------------------------------


def test_tampered_payload_fails_the_signature_and_discloses_nothing(marriage_type, civil):
    header, claims, sig = _parts(_jws(_issue(marriage_type, civil["mz"])))
    claims["credentialSubject"]["name"] = "王五"
    result = verification.verify(_encode(header, claims, sig))
    assert result.verdict == "invalid" and _failed(result) == {"signature.invalid"}
    assert result.summary is None
    assert _codes(result)["validity"] == ("skipped", "skipped")  # nothing the forgery says is looked at


def test_tampered_signature_fails(marriage_type, civil):
    token = _jws(_issue(marriage_type, civil["mz"], alg="ES256"))
    head, body, sig = token.split(".")
    raw = bytearray(jose.b64url_decode(sig))
    raw[10] ^= 0x01
    result = verification.verify(f"{head}.{body}.{jose.b64url_encode(bytes(raw))}")
    assert result.verdict == "invalid" and _failed(result) == {"signature.invalid"}
    # A second encoding of the same signature bytes (trailing bits) is not accepted either.
    last = sig[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    other = next(c for c in alphabet if c != last and jose.b64url_decode(sig[:-1] + c) == jose.b64url_decode(sig))
    assert verification.verify(f"{head}.{body}.{sig[:-1]}{other}").verdict == "invalid"


def test_signed_with_another_departments_key_while_claiming_this_issuer(marriage_type, civil):
    _header, claims, _sig = _parts(_jws(_issue(marriage_type, civil["mz"])))
    ga_key, _ = keys.active_key(civil["ga"], "SM2")
    forged = jose.sign(claims, ga_key, typ="vc+jwt", header={"cty": "vc"})
    result = verification.verify(forged)
    assert result.verdict == "invalid" and _failed(result) == {"key.other_issuer"}
    # … and the same forgery naming the other department as issuer: its identifier still names 民政厅.
    claims["issuer"]["id"] = credentials.issuer_url(civil["ga"])
    result = verification.verify(jose.sign(claims, ga_key, typ="vc+jwt", header={"cty": "vc"}))
    assert result.verdict == "invalid" and "identifier.issuer_mismatch" in _failed(result)


def test_unknown_kid_and_unknown_issuer(marriage_type, civil):
    _header, claims, _sig = _parts(_jws(_issue(marriage_type, civil["mz"])))
    stray = jose.generate("SM2", "11370000000000011X-sm2-20260101-deadbeef")
    result = verification.verify(jose.sign(claims, stray, typ="vc+jwt"))
    assert result.verdict == "invalid" and _failed(result) == {"key.unknown"}
    claims["issuer"]["id"] = "https://elsewhere.example/licences/issuers/11370000000000011X"
    result = verification.verify(jose.sign(claims, stray, typ="vc+jwt"))
    assert result.verdict == "unknown_issuer" and _failed(result) == {"issuer.unknown"}
    offline = verification.OfflineVerifier({}).verify(_jws(_issue(marriage_type, civil["mz"])))
    assert offline.verdict == "unknown_issuer"


def test_a_revoked_key_fails_every_credential_it_signed(marriage_type, civil):
    licence = _issue(marriage_type, civil["mz"])
    kid = _parts(_jws(licence))[0]["kid"]
    credentials.publish_due()
    jwks, lists = _offline(civil["mz"])
    keys.revoke_key(kid, actor="cli:test")
    result = verification.verify(_jws(licence))
    assert result.verdict == "invalid" and _failed(result) == {"key.revoked"}
    # Offline, a JWK Set fetched after the revocation no longer has the key.
    assert verification.OfflineVerifier(*_offline(civil["mz"])).verify(_jws(licence)).verdict == "invalid"
    assert verification.OfflineVerifier(jwks, lists).verify(_jws(licence)).valid  # an old cache still trusts it


def test_identifier_check_character_and_consistency(marriage_type, civil):
    _header, claims, _sig = _parts(_jws(_issue(marriage_type, civil["mz"])))
    key, _ = keys.active_key(civil["mz"], "SM2")
    identifier = claims["credentialSubject"]["licence"]["identifier"]
    wrong_check = identifier[:-1] + ("0" if identifier[-1] != "0" else "1")
    bad = json.loads(json.dumps(claims))
    bad["credentialSubject"]["licence"]["identifier"] = wrong_check
    result = verification.verify(jose.sign(bad, key, typ="vc+jwt"))
    assert result.verdict == "invalid" and "identifier.malformed" in _failed(result)
    other = json.loads(json.dumps(claims))
    other["id"] = credentials.credential_id(identifier, 7)
    result = verification.verify(jose.sign(other, key, typ="vc+jwt"))
    assert "identifier.inconsistent" in _failed(result) and not result.valid


# --- status: revoked, suspended, expired, not yet valid, superseded ------------------------------------


def test_revoked_and_suspended_licences_online_at_once(marriage_type, civil):
    licence = _issue(marriage_type, civil["mz"])
    token = _jws(licence)
    services.suspend(licence, actor="cli:test", reason="核查中")
    result = verification.verify(token)
    assert result.verdict == "suspended" and _failed(result) == {"status.suspended"}
    assert result.summary is not None  # a genuine credential: the verifier may see what it is
    services.resume(licence, actor="cli:test")
    assert verification.verify(token).valid
    services.revoke(licence, actor="cli:test", reason="婚姻关系解除")
    result = verification.verify(token)
    assert result.verdict == "revoked" and _failed(result) == {"status.revoked"}


def test_status_changes_reach_offline_verifiers_with_publication(marriage_type, civil):
    licence = _issue(marriage_type, civil["mz"])
    credentials.publish_due()
    before = _offline(civil["mz"])
    services.revoke(licence, actor="cli:test", reason="撤销")
    # Not yet published: an offline verifier still sees the old list (that is what ttl is about).
    assert verification.OfflineVerifier(*_offline(civil["mz"])).verify(_jws(licence)).valid
    credentials.publish_due(timezone.now() + datetime.timedelta(minutes=2))
    result = verification.OfflineVerifier(*_offline(civil["mz"])).verify(
        _jws(licence), now=timezone.now() + datetime.timedelta(minutes=2)
    )
    assert result.verdict == "revoked"
    assert verification.OfflineVerifier(*before).verify(_jws(licence)).valid


def test_expired_and_not_yet_valid(marriage_type, civil):
    today = timezone.localdate()
    old = _issue(
        marriage_type,
        civil["mz"],
        valid_from=today - datetime.timedelta(days=400),
        valid_until=today - datetime.timedelta(days=1),
    )
    result = verification.verify(_jws(old))
    assert result.verdict == "expired" and _failed(result) == {"validity.expired"}
    future = _issue(marriage_type, civil["mz"], valid_from=today + datetime.timedelta(days=30))
    result = verification.verify(_jws(future))
    assert result.verdict == "not_yet_valid" and _failed(result) == {"validity.not_yet_valid"}
    # Revoked and expired: revocation is the stronger answer.
    services.revoke(old, actor="cli:test", reason="撤销")
    assert verification.verify(_jws(old)).verdict == "revoked"


def test_superseded_versions(marriage_type, civil):
    licence = _issue(marriage_type, civil["mz"])
    first, first_qr = _jws(licence), qr.qr_url(licence)
    licence = services.vary(licence, {"remark": "补发"}, actor="cli:test", reason="补发")
    result = verification.verify(first)
    assert result.verdict == "superseded" and "record.superseded" in _failed(result)
    assert verification.verify(first_qr).verdict == "superseded"
    assert verification.verify(_jws(licence)).valid
    assert verification.verify(qr.qr_url(licence)).valid
    credentials.publish_due(timezone.now() + datetime.timedelta(minutes=2))
    later = timezone.now() + datetime.timedelta(minutes=2)
    offline = verification.OfflineVerifier(*_offline(civil["mz"]))
    assert offline.verify(first, now=later).verdict == "revoked"  # offline cannot tell: the bit is set
    assert offline.verify(_jws(licence), now=later).valid


# --- QR forgeries --------------------------------------------------------------------------------------


def test_forged_qr_payloads(marriage_type, civil):
    licence = _issue(marriage_type, civil["mz"])
    other = _issue(marriage_type, civil["mz"])
    payload = qr.qr_payload(licence)
    header, claims, sig = _parts(payload)
    # Altered claims (another licence's identifier) with the original signature.
    altered = dict(claims, sub=other.identifier)
    result = verification.verify(_encode(header, altered, sig))
    assert result.verdict == "invalid" and _failed(result) == {"signature.invalid"}
    # Signed by another department's key.
    ga_key, _ = keys.active_key(civil["ga"], "SM2")
    result = verification.verify(jose.sign(claims, ga_key, typ=qr.QR_TYP))
    assert result.verdict == "invalid" and _failed(result) == {"key.other_issuer"}
    # Genuinely signed, but the digest is another credential's: online, the register disagrees.
    key, _ = keys.active_key(civil["mz"], "SM2")
    mismatched = dict(claims, dig=qr.qr_claims(other)["dig"])
    result = verification.verify(jose.sign(mismatched, key, typ=qr.QR_TYP))
    assert result.verdict == "invalid" and _failed(result) == {"record.mismatch"}
    # A QR URL carrying a full credential, a URL that is no QR URL, a QR payload with the VC typ.
    assert verification.verify(f"{credentials.site_url()}/licences/q/{_jws(licence)}").verdict == "invalid"
    result = verification.verify(f"{credentials.site_url()}/licences/verify/")
    assert _failed(result) == {"input.not_a_licence"}
    result = verification.verify(jose.sign(claims, key, typ="vc+jwt"))
    assert result.verdict == "invalid" and "input.not_a_licence" in _failed(result)
    # Malformed status entries inside a genuinely signed payload.
    for broken in ({**claims, "st": [[1, -1], [2, 3]]}, {**claims, "st": [[True, 3], [2, 3]]}, {**claims, "ver": 0}):
        result = verification.verify(jose.sign(broken, key, typ=qr.QR_TYP))
        assert result.verdict == "invalid" and _failed(result) == {"input.not_a_licence"}


# --- offline status lists: altered, stale, missing, foreign --------------------------------------------


def test_altered_status_list_credential_offline(marriage_type, civil):
    from dgov.licenses import statuslist

    licence = _issue(marriage_type, civil["mz"])
    services.revoke(licence, actor="cli:test", reason="撤销")
    credentials.publish_due()
    jwks, lists = _offline(civil["mz"])
    credential = services.current_credential(licence)
    forged_lists = []
    for published in lists:
        header, claims, sig = _parts(published)
        if claims["credentialSubject"]["statusPurpose"] == "revocation":
            claims["credentialSubject"]["encodedList"] = statuslist.encode(bytes(statuslist.list_size() // 8))
        forged_lists.append(_encode(header, claims, sig))
    assert verification.OfflineVerifier(jwks, lists).verify(credential.jws).verdict == "revoked"
    result = verification.OfflineVerifier(jwks, forged_lists).verify(credential.jws)
    assert result.verdict == "status_unknown" and _failed(result) == {"status.list_signature"}
    # A list re-signed by another department's key for this issuer: not trusted either.
    ga_key, _ = keys.active_key(civil["ga"], "SM2")
    resigned = [jose.sign(_parts(jws)[1], ga_key, typ="vc+jwt") for jws in forged_lists]
    jwks[credentials.issuer_url(civil["ga"])] = keys.issuer_jwks(civil["ga"])
    result = verification.OfflineVerifier(jwks, resigned).verify(credential.jws)
    assert result.verdict == "status_unknown" and "status.list_untrusted" in _failed(result)
    # Garbage in place of a list.
    garbage = {credentials.status_list_url(credential.revocation_list_id): "not a jws"}
    result = verification.OfflineVerifier(jwks, garbage).verify(credential.jws)
    assert result.verdict == "status_unknown" and "status.list_invalid" in _failed(result)


def test_stale_and_missing_status_lists_offline(marriage_type, civil, settings):
    settings.LICENCE_STATUS_PUBLISH_SECONDS = 60
    licence = _issue(marriage_type, civil["mz"])
    credentials.publish_due()
    verifier = verification.OfflineVerifier(*_offline(civil["mz"]), max_status_age=datetime.timedelta(hours=24))
    now = timezone.now()
    # Past the ttl: still valid, with a warning on both status checks.
    aging = verifier.verify(_jws(licence), now=now + datetime.timedelta(minutes=10))
    assert aging.valid and _codes(aging)["revocation"] == ("warning", "status.aging")
    # Past the maximum age: the bits no longer count.
    stale = verifier.verify(_jws(licence), now=now + datetime.timedelta(days=2))
    assert stale.verdict == "status_unknown" and _failed(stale) == {"status.stale"}
    # A list dated in the future is not believed.
    early = verifier.verify(_jws(licence), now=now - datetime.timedelta(hours=1))
    assert not early.valid
    # No lists cached at all.
    jwks, _lists = _offline(civil["mz"])
    missing = verification.OfflineVerifier(jwks, []).verify(_jws(licence))
    assert missing.verdict == "status_unknown" and _failed(missing) == {"status.list_missing"}


# --- structure, algorithms, garbage ----------------------------------------------------------------------


def test_alg_none_hs256_and_rs256_are_refused(marriage_type, civil):
    header, claims, _sig = _parts(_jws(_issue(marriage_type, civil["mz"])))
    none = _encode({"alg": "none", "typ": "vc+jwt"}, claims, "")
    assert _failed(verification.verify(none)) == {"algorithm.none"}
    assert _failed(verification.verify(_encode({"typ": "vc+jwt"}, claims, ""))) == {"algorithm.none"}
    # HS256 keyed with the issuer's public key (the classic algorithm-confusion attack).
    public = json.dumps(keys.issuer_jwks(civil["mz"])["keys"][0]).encode()
    head = {"alg": "HS256", "typ": "vc+jwt", "kid": header["kid"]}
    signing_input = _encode(head, claims, "")[:-1]
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    result = verification.verify(f"{signing_input}.{jose.b64url_encode(mac)}")
    assert result.verdict == "invalid" and _failed(result) == {"algorithm.not_allowed"}
    rsa = jose.generate("RS256", header["kid"])
    result = verification.verify(jose.sign(claims, rsa, typ="vc+jwt"))
    assert _failed(result) == {"algorithm.not_allowed"}
    # The header's alg must be the key's: an SM2 key named in an ES256 header.
    result = verification.verify(
        _encode({**header, "alg": "ES256"}, claims, _parts(_jws(_issue(marriage_type, civil["mz"])))[2])
    )
    assert _failed(result) == {"key.alg_mismatch"}
    result = verification.verify(_encode({**header, "crit": ["b64"]}, claims, "AAAA"))
    assert _failed(result) == {"algorithm.crit"}
    result = verification.verify(_encode({**header, "typ": "JWT"}, claims, "AAAA"))
    assert _failed(result) == {"algorithm.typ"}


@pytest.mark.parametrize(
    ("presented", "code"),
    [
        ("", "input.empty"),
        ("   ", "input.empty"),
        (None, "input.empty"),
        (12345, "input.empty"),
        ("x" * (verification.MAX_CREDENTIAL_LENGTH + 1), "input.too_large"),
        ("hello world", "input.malformed"),
        ("a.b.c", "input.malformed"),
        ("eyJ.eyJ.", "input.malformed"),
        (base64.urlsafe_b64encode(b"[" * 5000).decode() + ".e30.", "input.malformed"),  # deep JSON
        ("e30.W10.", "input.malformed"),  # claims not an object
        ("e30.e30.", "algorithm.none"),
        ("http://127.0.0.1:8000/licences/q/" + "A" * 5000, "input.too_large"),
        (b"\xff\xfe binary", "input.malformed"),
    ],
)
def test_garbage_is_reported_never_valid(presented, code):
    for result in (verification.verify(presented), verification.OfflineVerifier({}).verify(presented)):
        assert not result.valid and result.verdict == "invalid"
        assert code in _failed(result)
        assert result.summary is None


def test_claims_of_the_wrong_shape(marriage_type, civil):
    _header, claims, _sig = _parts(_jws(_issue(marriage_type, civil["mz"])))
    key, _ = keys.active_key(civil["mz"], "SM2")
    variants = {
        "no status": {k: v for k, v in claims.items() if k != "credentialStatus"},
        "one status": {**claims, "credentialStatus": claims["credentialStatus"][:1]},
        "bad index": {
            **claims,
            "credentialStatus": [
                {**claims["credentialStatus"][0], "statusListIndex": "-1"},
                claims["credentialStatus"][1],
            ],
        },
        "bad date": {**claims, "validFrom": "yesterday"},
        "naive date": {**claims, "validFrom": "2026-01-01T00:00:00"},
        "no context": {k: v for k, v in claims.items() if k != "@context"},
        "subject list": {**claims, "credentialSubject": []},
        "version bool": {
            **claims,
            "credentialSubject": {
                **claims["credentialSubject"],
                "licence": {**claims["credentialSubject"]["licence"], "version": True},
            },
        },
    }
    for name, variant in variants.items():
        result = verification.verify(jose.sign(variant, key, typ="vc+jwt"))
        assert result.verdict == "invalid", name
        assert _codes(result)["input"][0] == "failed", name


def test_a_status_entry_pointing_elsewhere(marriage_type, civil):
    _header, claims, _sig = _parts(_jws(_issue(marriage_type, civil["mz"])))
    ga_list = StatusList.objects.create(organization=civil["ga"], purpose="revocation", bits=bytes(16384))
    key, _ = keys.active_key(civil["mz"], "SM2")
    entries = [dict(entry) for entry in claims["credentialStatus"]]
    entries[0]["statusListCredential"] = credentials.status_list_url(ga_list.pk)
    result = verification.verify(jose.sign({**claims, "credentialStatus": entries}, key, typ="vc+jwt"))
    # The re-signed copy also differs from the register's (record.mismatch): invalid wins.
    assert result.verdict == "invalid" and "status.list_mismatch" in _failed(result)
    entries[0]["statusListCredential"] = "https://elsewhere.example/licences/status/1"
    result = verification.verify(jose.sign({**claims, "credentialStatus": entries}, key, typ="vc+jwt"))
    assert "status.list_unknown" in _failed(result) and not result.valid
    entries[0]["statusListCredential"] = credentials.status_list_url(ga_list.pk)
    entries[0]["statusListIndex"] = "999999999"
    result = verification.verify(jose.sign({**claims, "credentialStatus": entries}, key, typ="vc+jwt"))
    assert not result.valid


def test_a_credential_signed_with_our_key_but_not_in_the_register(marriage_type, civil):
    _header, claims, _sig = _parts(_jws(_issue(marriage_type, civil["mz"])))
    key, _ = keys.active_key(civil["mz"], "SM2")
    claims["credentialSubject"]["licence"]["number"] = "X1"  # a second, differing copy under the same id
    result = verification.verify(jose.sign(claims, key, typ="vc+jwt", header={"cty": "vc"}))
    assert result.verdict == "invalid" and _failed(result) == {"record.mismatch"}


# --- never valid on an error ---------------------------------------------------------------------------


def test_errors_inside_verification_are_failed_checks(marriage_type, civil, monkeypatch):
    token = _jws(_issue(marriage_type, civil["mz"]))

    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(verification.LocalIssuers, "status", boom)
    result = verification.verify(token)
    assert result.verdict == "error" and not result.valid
    assert _codes(result)["internal"] == ("failed", "internal.error")

    class Liar(verification.LocalIssuers):
        """A resolver that answers the wrong number of readings."""

        def status(self, issuer, refs, now):
            return []

    result = verification.verify(token, resolver=Liar())
    assert result.verdict == "error" and not result.valid


class _Trusting:
    """A resolver that trusts the issuer and key but cannot read status (never enough for valid)."""

    def __init__(self, key, issuer_id):
        self._key, self._issuer_id = key, issuer_id

    def issuer(self, issuer_id):
        return verification.TrustedIssuer(id=issuer_id, uscc=verification.issuer_uscc(issuer_id), origin="test")

    def key(self, kid):
        return verification.KeyRecord(kid, self._key.alg, self._issuer_id, self._key)

    def status(self, issuer, refs, now):
        return [verification.StatusReading(None, "") for _ref in refs]

    def record(self, issuer, credential_id):
        return None


def test_a_resolver_that_cannot_tell_status_never_yields_valid(marriage_type, civil):
    token = _jws(_issue(marriage_type, civil["mz"]))
    public = keys.public_key(_parts(token)[0]["kid"])
    result = verification.verify(token, resolver=_Trusting(public, credentials.issuer_url(civil["mz"])))
    assert result.verdict == "status_unknown" and _failed(result) == {"status.unavailable"}
    assert _codes(result)["record"] == ("passed", "record.not_registered")


# --- fuzzing -------------------------------------------------------------------------------------------


def test_mutations_of_a_genuine_credential_never_verify(marriage_type, civil):
    licence = _issue(marriage_type, civil["mz"])
    credentials.publish_due()
    token = _jws(licence)
    verifier = verification.OfflineVerifier(*_offline(civil["mz"]))
    assert verifier.verify(token).valid
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.= "

    @settings(max_examples=150, deadline=None)
    @given(position=strategies.integers(0, len(token) - 1), replacement=strategies.sampled_from(alphabet))
    def check(position, replacement):
        mutated = token[:position] + replacement + token[position + 1 :]
        if mutated != token:
            assert not verifier.verify(mutated).valid

    check()


@settings(max_examples=200, deadline=None)
@given(presented=strategies.one_of(strategies.text(max_size=300), strategies.binary(max_size=300)))
def test_random_input_never_verifies_or_raises(presented):
    result = verification.OfflineVerifier({}).verify(presented)
    assert not result.valid and result.verdict in ("invalid", "unknown_issuer", "error")
    assert result.verdict != "error"
