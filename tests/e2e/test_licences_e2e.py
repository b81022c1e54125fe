"""E-licence verification in a real browser: a verifier scans the QR code, pastes a credential, uploads the PDF."""

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def licence(province, make_departments):
    """A marriage certificate (结婚证) issued by the provincial 民政厅."""
    from dgov.licenses import keys, services
    from dgov.licenses.models import LicenceType

    keys.clear_cache()
    civil = make_departments([("mz", "370000-MZ", "山东省民政厅", "MZ", 1, province)])["mz"]
    marriage = LicenceType.objects.create(
        code="11100000000013127D001",
        name="结婚证",
        department=civil,
        issuer_kind="MZ",
        holder_kind="person",
        items=[
            {"name": "spouse_name", "label": "配偶姓名", "type": "string", "required": True, "sensitivity": "personal"},
            {"name": "registered_on", "label": "登记日期", "type": "date", "required": True},
        ],
        validity={},
        sharing_type="conditional",
    )
    return services.issue(
        marriage,
        issuer=civil,
        holder_name="张三",
        holder_id="370102199001011231",
        data={"spouse_name": "李四", "registered_on": "2026-05-20"},
        actor="cli:test",
    )


def _verdict(page):
    result = page.get_by_test_id("verify-result")
    expect(result).to_be_visible()
    return result.get_attribute("data-verdict")


def test_verifier_checks_qr_credential_and_pdf(page, licence, screenshot_dir, tmp_path):
    from dgov.licenses import qr, services

    # 1. Scanning the QR code opens the verification page: valid, holder masked.
    path = urlsplit(qr.qr_url(licence)).path
    page.goto(path)
    assert _verdict(page) == "valid"
    body = page.locator("body").inner_text()
    assert "370102199001011231" not in body and "李四" not in body
    assert licence.identifier in body
    page.screenshot(path=f"{screenshot_dir}/licence-verify-valid.png", full_page=True)

    # 2. A credential with one changed character is reported, never valid.
    jws = services.current_credential(licence).jws
    head, body_part, signature = jws.split(".")
    tampered = f"{head}.{body_part[:-2]}{'A' if body_part[-2] != 'A' else 'B'}{body_part[-1]}.{signature}"
    page.goto("/licences/verify/")
    page.locator("textarea").first.fill(tampered)
    page.get_by_role("button", name="核验", exact=True).click()
    assert _verdict(page) not in ("valid", None)

    # 3. The signed PDF uploaded on the same page verifies. (pyHanko runs its own event loop, and
    # Playwright's sync API holds one in this thread: render in another.)
    pdf = tmp_path / "licence.pdf"
    with ThreadPoolExecutor(1) as pool:
        pdf.write_bytes(pool.submit(services.render_pdf, licence, actor="cli:test").result())
    page.goto("/licences/verify/")
    page.locator("input[type=file]").set_input_files(str(pdf))
    page.get_by_role("button", name="核验", exact=True).click()
    assert _verdict(page) == "valid"

    # 4. After revocation the same QR code says revoked.
    services.revoke(licence, actor="cli:test", reason="婚姻关系解除")
    page.goto(path)
    assert _verdict(page) == "revoked"
    page.screenshot(path=f"{screenshot_dir}/licence-verify-revoked.png", full_page=True)


def test_holder_sees_the_licence_and_authorizes_a_department(page, licence, province, user_password):
    from django.contrib.auth import get_user_model

    from dgov.kernel.fields import blind_index
    from dgov.kernel.models import Organization
    from dgov.kernel.validators import make_uscc
    from dgov.licenses.models import LicenceConsent

    Organization.objects.create(
        name="山东省公安厅",
        code="370000-GA",
        kind="GA",
        level=1,
        division=province,
        uscc=make_uscc("1", "1", "370000", serial=2),
    )
    users = get_user_model()
    holder = users.objects.create_user(username="zhangsan", password=user_password, kind="person", display_name="张三")
    users.objects.filter(pk=holder.pk).update(
        real_name_level=2, id_number_digest=blind_index("370102199001011231", purpose="resident_id")
    )

    page.goto("/login/?next=/account/licences/")
    page.get_by_label("用户名").fill("zhangsan")
    page.get_by_label("密码").fill(user_password)
    page.locator("form.form").get_by_role("button", name="登录").click()
    page.wait_for_url("**/account/licences/")
    page.get_by_role("link", name="结婚证").first.click()
    expect(page.get_by_test_id("wallet-pdf")).to_be_visible()
    assert "370102199001011231" not in page.locator("body").inner_text()

    page.get_by_test_id("wallet-consent-new").click()
    page.get_by_label("查找部门").fill("公安")
    page.get_by_role("button", name="查找").click()
    page.get_by_label("山东省公安厅").check()
    page.get_by_label("用途").fill("办理户口迁移")
    page.get_by_role("button", name="确认授权").click()
    expect(page.get_by_test_id("wallet-consent-revoke")).to_be_visible()
    consent = LicenceConsent.objects.get(licence=licence)
    assert consent.grantee.code == "370000-GA" and consent.purpose == "办理户口迁移"

    page.get_by_test_id("wallet-consent-revoke").click()
    expect(page.get_by_test_id("wallet-consent-revoke")).to_have_count(0)
    consent.refresh_from_db()
    assert consent.revoked_at is not None
