"""Public verification surfaces: the verify page, the QR landing page, issuer documents, status lists, the API.

No login anywhere; rate-limited per client address; answers never carry the holder's data
unmasked; bad bodies are 4xx problems, never 500s.
"""

import json
import logging

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from dgov.licenses import credentials, keys, qr, services, verification
from dgov.licenses.models import StatusList
from dgov.oidc import jose

pytestmark = pytest.mark.django_db

HOLDER = "370102199001011231"
API = "/api/v1/licences/verify/"
PAGE = "/licences/verify/"


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()
    verification.clear_cache()
    keys.clear_cache()
    yield
    cache.clear()


@pytest.fixture
def licence(marriage_type, civil):
    return services.issue(
        marriage_type,
        issuer=civil["mz_city"],
        holder_name="张三",
        holder_id=HOLDER,
        data={"spouse_name": "李四", "registered_on": "2026-05-20"},
        actor="cli:test",
        number="J3701002026000001",
    )


def _jws(licence):
    return services.current_credential(licence).jws


def _private(body: str):
    assert "张三" not in body and HOLDER not in body and "李四" not in body


# --- the page -----------------------------------------------------------------------------------------


def test_verify_page_pasted_credential(client, licence):
    page = client.get(PAGE)
    assert page.status_code == 200 and 'name="credential"' in page.content.decode()
    answer = client.post(PAGE, {"credential": _jws(licence)})
    body = answer.content.decode()
    assert answer.status_code == 200
    assert 'data-verdict="valid"' in body and "核验结论：有效" in body
    assert "张*" in body and "370102********1231" in body and licence.identifier in body
    assert 'data-check="signature" data-status="passed"' in body
    _private(body)
    assert "no-store" in answer["Cache-Control"]


def test_verify_page_uploaded_file_and_bad_submissions(client, licence):
    upload = SimpleUploadedFile("licence.jwt", _jws(licence).encode(), content_type="application/vc+jwt")
    answer = client.post(PAGE, {"file": upload})
    assert 'data-verdict="valid"' in answer.content.decode()
    # Nothing, both, too large, binary: form errors, no verification.
    for data in (
        {},
        {"credential": "abc", "file": SimpleUploadedFile("a.jwt", b"abc")},
        {"credential": "x" * (verification.MAX_CREDENTIAL_LENGTH + 1)},
        {"file": SimpleUploadedFile("a.jwt", b"\xff\xfe\x00binary")},
        {"file": SimpleUploadedFile("a.jwt", b"x" * (verification.MAX_CREDENTIAL_LENGTH + 1))},
    ):
        answer = client.post(PAGE, data)
        assert answer.status_code == 200 and "data-verdict" not in answer.content.decode()
        assert 'class="field-error"' in answer.content.decode() or "notice-error" in answer.content.decode()


def test_verify_page_tampered_and_revoked(client, licence):
    token = _jws(licence)
    head, body, sig = token.split(".")
    claims = json.loads(jose.b64url_decode(body))
    claims["credentialSubject"]["licence"]["data"]["spouse_name"] = "王五"
    forged = jose.b64url_encode(json.dumps(claims, ensure_ascii=False).encode())
    answer = client.post(PAGE, {"credential": f"{head}.{forged}.{sig}"})
    text = answer.content.decode()
    assert 'data-verdict="invalid"' in text and 'data-check="signature" data-status="failed"' in text
    assert "张*" not in text  # nothing disclosed from a forgery
    services.revoke(licence, actor="cli:test", reason="撤销")
    answer = client.post(PAGE, {"credential": token})
    assert 'data-verdict="revoked"' in answer.content.decode() and "status.revoked" in answer.content.decode()


def test_verify_page_in_english(client, licence):
    answer = client.post(PAGE, {"credential": _jws(licence)}, HTTP_ACCEPT_LANGUAGE="en")
    body = answer.content.decode()
    assert "Verdict: Valid" in body and "Digital signature" in body


def test_qr_landing_page(client, licence):
    url = qr.qr_url(licence)
    path = url[len(credentials.site_url()) :]
    answer = client.get(path)
    body = answer.content.decode()
    assert answer.status_code == 200 and 'data-verdict="valid"' in body
    assert "张*" in body and "J3701002026000001" in body
    _private(body)
    assert answer["Referrer-Policy"] == "same-origin" and "no-store" in answer["Cache-Control"]
    forged = path[:-6] + ("AAAAAA" if not path.endswith("AAAAAA") else "BBBBBB")
    assert 'data-verdict="invalid"' in client.get(forged).content.decode()
    assert 'data-verdict="invalid"' in client.get("/licences/q/garbage").content.decode()
    assert client.post(path).status_code == 405


# --- issuer documents and status lists -----------------------------------------------------------------


def test_issuer_document_and_jwks(client, licence, civil):
    uscc = civil["mz_city"].uscc
    document = client.get(f"/licences/issuers/{uscc}")
    assert document.status_code == 200 and document["Access-Control-Allow-Origin"] == "*"
    data = document.json()
    assert data["id"] == credentials.issuer_url(civil["mz_city"]) and data["name"] == "济南市民政局"
    assert data["jwks_uri"] == data["id"] + "/jwks.json"
    jwks = client.get(f"/licences/issuers/{uscc}/jwks.json")
    assert jwks.status_code == 200 and "max-age" in jwks["Cache-Control"]
    assert [key["kid"] for key in jwks.json()["keys"]] == [k["kid"] for k in keys.issuer_jwks(civil["mz_city"])["keys"]]
    # Organizations without signing keys, unknown and malformed codes: 404 problems.
    for path in (f"/licences/issuers/{civil['ga'].uscc}", "/licences/issuers/ABC", "/licences/issuers/X/jwks.json"):
        answer = client.get(path)
        assert answer.status_code == 404 and answer["Content-Type"].startswith("application/problem+json")


def test_status_list_is_served_once_published(client, licence, settings):
    settings.LICENCE_STATUS_PUBLISH_SECONDS = 60
    credential = services.current_credential(licence)
    path = f"/licences/status/{credential.revocation_list_id}"
    assert client.get(path).status_code == 404
    assert client.get("/licences/status/999999").status_code == 404
    credentials.publish_due()
    answer = client.get(path)
    assert answer.status_code == 200 and answer["Content-Type"] == "application/vc+jwt"
    assert "max-age=60" in answer["Cache-Control"] and "public" in answer["Cache-Control"]
    published = answer.content.decode()
    assert published == StatusList.objects.get(pk=credential.revocation_list_id).published
    assert client.get(path, HTTP_IF_NONE_MATCH=answer["ETag"]).status_code == 304
    # What the endpoints serve is enough for an offline verifier.
    uscc = licence.issuer.uscc
    jwks = client.get(f"/licences/issuers/{uscc}/jwks.json").json()
    suspension = client.get(f"/licences/status/{credential.suspension_list_id}").content.decode()
    verifier = verification.OfflineVerifier({credentials.issuer_url(licence.issuer): jwks}, [published, suspension])
    assert verifier.verify(_jws(licence)).valid


# --- the API --------------------------------------------------------------------------------------------


def test_api_verifies_credentials_and_qr_payloads(client, licence):
    answer = client.post(API, {"credential": _jws(licence)}, content_type="application/json")
    assert answer.status_code == 200
    data = answer.json()
    assert data["verdict"] == "valid" and data["valid"] is True and data["mode"] == "online"
    assert {check["code"] for check in data["checks"]} >= {"signature", "revocation", "record"}
    assert data["licence"]["holder_name"] == "张*" and data["licence"]["identifier"] == licence.identifier
    _private(answer.content.decode())
    answer = client.post(API, {"credential": qr.qr_url(licence)}, content_type="application/json")
    assert answer.json()["verdict"] == "valid" and answer.json()["kind"] == "qr"
    credentials.publish_due()
    answer = client.post(API, {"credential": _jws(licence), "mode": "offline"}, content_type="application/json")
    assert answer.json()["verdict"] == "valid" and answer.json()["mode"] == "offline"


def test_api_reports_bad_credentials_with_reasons(client, licence):
    services.suspend(licence, actor="cli:test", reason="核查")
    answer = client.post(API, {"credential": _jws(licence)}, content_type="application/json")
    data = answer.json()
    assert answer.status_code == 200 and data["verdict"] == "suspended" and data["valid"] is False
    failed = [check for check in data["checks"] if check["status"] == "failed"]
    assert [check["reason_code"] for check in failed] == ["status.suspended"]
    answer = client.post(API, {"credential": "not a credential"}, content_type="application/json")
    assert answer.status_code == 200 and answer.json()["verdict"] == "invalid" and answer.json()["licence"] is None
    answer = client.post(API, {"credential": "x"}, content_type="application/json", HTTP_ACCEPT_LANGUAGE="en")
    assert answer.json()["verdict_label"] == "Invalid (verification failed)"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("{not json", "application/json"),
        ("[]", "application/json"),
        ("{}", "application/json"),
        ('{"credential": ""}', "application/json"),
        ('{"credential": 5}', "application/json"),
        ('{"credential": "a.b.c", "mode": "sometimes"}', "application/json"),
        (json.dumps({"credential": "x" * (verification.MAX_CREDENTIAL_LENGTH + 1)}), "application/json"),
        ("credential=abc", "application/x-www-form-urlencoded"),
        ("\xff\xfe", "application/json"),
    ],
)
def test_api_malformed_bodies_are_4xx_problems(client, body, content_type):
    answer = client.post(API, body, content_type=content_type)
    assert 400 <= answer.status_code < 500
    assert answer["Content-Type"].startswith("application/problem+json")


def test_api_huge_body_is_not_a_500(client):
    answer = client.post(API, json.dumps({"credential": "x" * 3_000_000}), content_type="application/json")
    assert 400 <= answer.status_code < 500


def test_api_never_500_and_never_valid_on_error(client, licence, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(verification, "verify", boom)
    answer = client.post(API, {"credential": _jws(licence)}, content_type="application/json")
    assert answer.status_code == 200 and answer.json()["verdict"] == "error" and answer.json()["valid"] is False
    assert client.get(API).status_code == 405


# --- rate limit and the verification log ---------------------------------------------------------------


def test_public_verification_is_rate_limited(client, licence, settings):
    settings.LICENCE_VERIFY_RATE_PER_MINUTE = 3
    token = _jws(licence)
    assert client.post(PAGE, {"credential": token}).status_code == 200
    assert client.post(API, {"credential": token}, content_type="application/json").status_code == 200
    assert client.get(qr.qr_url(licence)[len(credentials.site_url()) :]).status_code == 200
    page = client.post(PAGE, {"credential": token})
    assert page.status_code == 429 and int(page["Retry-After"]) >= 1
    assert "data-verdict" not in page.content.decode()
    api = client.post(API, {"credential": token}, content_type="application/json")
    assert api.status_code == 429 and api["Content-Type"].startswith("application/problem+json") and api["Retry-After"]
    # Another client address has its own allowance; the documents are not limited.
    other = client.post(API, {"credential": token}, content_type="application/json", REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 200
    assert client.get(f"/licences/issuers/{licence.issuer.uscc}").status_code == 200


def test_verifications_are_logged_without_personal_data(client, licence, caplog):
    with caplog.at_level(logging.INFO, logger="dgov.licenses.verification"):
        client.post(API, {"credential": _jws(licence)}, content_type="application/json")
        client.post(PAGE, {"credential": "garbage"})
    records = [record for record in caplog.records if record.getMessage() == "licence verification"]
    assert [(record.channel, record.verdict) for record in records] == [("api", "valid"), ("page", "invalid")]
    assert records[0].licence_identifier == licence.identifier and records[1].failed_checks == "input.malformed"
    for record in records:
        _private(json.dumps(vars(record), ensure_ascii=False, default=str))


# --- licence PDFs through the same page and API --------------------------------------------------------


def test_pdf_upload_on_the_page_and_through_the_api(client, licence):
    from dgov.licenses import pdfsign

    data = pdfsign.licence_pdf(licence)
    answer = client.post(PAGE, {"file": SimpleUploadedFile("licence.pdf", data, content_type="application/pdf")})
    body = answer.content.decode()
    assert 'data-verdict="valid"' in body and "电子证照版式文件（PDF）" in body and "张*" in body
    _private(body)
    answer = client.post(API + "pdf", data, content_type="application/pdf")
    assert answer.status_code == 200 and answer.json()["kind"] == "pdf" and answer.json()["verdict"] == "valid"
    altered = bytearray(data)
    position = data.index(b"/Contents") - 200  # inside the signed page content, well before the signature
    altered[position] ^= 0x01
    answer = client.post(API + "pdf", bytes(altered), content_type="application/pdf")
    assert answer.status_code == 200 and answer.json()["verdict"] == "invalid"
    answer = client.post(API + "pdf", b"%PDF-1.7 garbage", content_type="application/pdf")
    assert answer.json()["verdict"] == "invalid" and answer.json()["valid"] is False
    answer = client.post(API + "pdf", data, content_type="application/octet-stream")
    assert answer.status_code == 415 and answer["Content-Type"].startswith("application/problem+json")
