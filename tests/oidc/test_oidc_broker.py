"""Identity brokering against a live server that is its own upstream provider.

The live dgov is both sides: a registered client of its provider (redirect URI = its own broker
callback) and an :class:`UpstreamProvider` pointing at its own issuer. Discovery, JWKS, the code
exchange and UserInfo go over real HTTP with real signatures (RS256, ES256, SM2). Two ``requests``
sessions play the person's browser: one logged in at the "upstream", one anonymous at the "broker".

In this setup the upstream's person is itself an account of the same database; its blind index is
left empty (the person is known to the upstream only), so the broker's look-up by ID number finds
just the local accounts a test makes on purpose.
"""

import base64
import datetime
import json
import re
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import Client
from oidc_helpers import install_population

from dgov.identity import services as identity_services
from dgov.identity import totp
from dgov.kernel.fields import blind_index
from dgov.kernel.models import AuditRecord
from dgov.kernel.validators import make_resident_id
from dgov.oidc.models import FederatedIdentity, UpstreamProvider
from dgov.oidc.services import broker, clients, keys, upstream

pytestmark = pytest.mark.django_db(transaction=True)

ZHANG_ID = make_resident_id("110101", datetime.date(1980, 5, 17), 21)
LI_ID = make_resident_id("440305", datetime.date(1992, 11, 3), 38)
SLUG = "national"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Discovery and keys are cached per process: every test starts without them."""
    upstream.forget()
    yield
    upstream.forget()


@pytest.fixture
def live(live_server, settings):
    """The live server is the issuer and the site (its callback URL is built from SITE_URL)."""
    settings.OIDC_ISSUER = live_server.url
    settings.SITE_URL = live_server.url
    return live_server.url


@pytest.fixture
def sessions():
    """HTTP sessions closed when the test ends (a kept-alive connection would outlive the live server)."""
    opened = []
    yield opened
    for session in opened:
        session.close()


def _session(sessions, user=None) -> requests.Session:
    """A browser: anonymous, or carrying a logged-in dgov session of ``user``."""
    browser = requests.Session()
    sessions.append(browser)
    if user is not None:
        django_client = Client()
        django_client.force_login(user)
        name = django_settings.SESSION_COOKIE_NAME
        browser.cookies.set(name, django_client.cookies[name].value)
    return browser


def upstream_person(django_user_model, username, id_number, *, name="张三", level=2, kind="person"):
    """A verified account at the upstream, releasing its number; invisible to the broker's look-up (no digest)."""
    return django_user_model.objects.create_user(
        username=username,
        password=None,
        kind=kind,
        display_name=name,
        id_number=id_number,
        real_name_level=level,
    )


@pytest.fixture
def registration(live, department):
    """The broker registered as a client of the upstream (the provider side), allowed dgov:identity."""

    def register(alg="RS256", scopes=("openid", "profile", "dgov:identity")):
        client, secret = clients.create_client(
            name="本省政务服务平台",
            organization=department,
            actor="system:test",
            redirect_uris=[f"{live}/login/upstream/{SLUG}/callback/"],
            scopes=scopes,
            grant_types=["authorization_code"],
            id_token_alg=alg,
            first_party=True,
            client_id=f"broker-{alg.lower()}",
        )
        return client, secret

    return register


@pytest.fixture
def provider(live, registration):
    """The upstream provider as configured at the broker (RS256 unless a test makes another)."""

    def configure(alg="RS256", **options):
        client, secret = registration(alg)
        values = {"allow_create": False, "max_level": 2, **options}
        return broker.create_provider(
            slug=SLUG,
            name_zh="国家政务服务平台",
            name_en="National Government Service Platform",
            issuer=live,
            client_id=client.client_id,
            client_secret=secret,
            actor="system:test",
            **values,
        )

    return configure


def start(browser, live, **params):
    """The login page's button: GET /login/upstream/<slug>/; returns the authorization URL."""
    query = f"?{urlencode(params)}" if params else ""
    response = browser.get(f"{live}/login/upstream/{SLUG}/{query}", allow_redirects=False, timeout=30)
    assert response.status_code == 302, response.text[:500]
    return response.headers["Location"]


def at_upstream(browser, url):
    """The upstream answers the authorization request for its logged-in user; returns the callback URL."""
    response = browser.get(url, allow_redirects=False, timeout=30)
    assert response.status_code == 302, response.text[:500]
    return response.headers["Location"]


def brokered_login(broker_browser, upstream_browser, live, *, rewrite=None, **params):
    """Start at the broker, authorize at the upstream, come back: the callback's response (not followed)."""
    url = start(broker_browser, live, **params)
    if rewrite is not None:
        url = rewrite(url)
    callback = at_upstream(upstream_browser, url)
    assert callback.startswith(f"{live}/login/upstream/{SLUG}/callback/?"), callback
    return broker_browser.get(callback, allow_redirects=False, timeout=30)


def error_text(response) -> str:
    """The error box of an error page, without markup."""
    match = re.search(r'data-testid="upstream-error">(.*?)</div>', response.text, re.S)
    assert match, response.text[:1000]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def refusals(reason=None):
    """The audited refusals (optionally of one reason)."""
    rows = AuditRecord.objects.filter(action="oidc.upstream.refuse").order_by("seq")
    return [r for r in rows if reason is None or r.detail.get("reason") == reason]


# --- logging in -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256", "SM2"])
def test_existing_person_is_linked_by_id_number_and_logged_in(
    alg, live, provider, django_user_model, sessions, user_password
):
    provider(alg)
    # Verified here before the number itself was kept: only the blind index is on file.
    local = django_user_model.objects.create_user(
        username="zhang-local",
        password=user_password,
        kind="person",
        display_name="张三",
        id_number_digest=blind_index(ZHANG_ID, purpose="resident_id"),
        real_name_level=2,
    )
    upstream_user = upstream_person(django_user_model, "zhang-national", ZHANG_ID)
    browser = _session(sessions)
    response = brokered_login(browser, _session(sessions, upstream_user), live, next="/account/")
    assert response.status_code == 302 and response.headers["Location"] == "/account/"

    account = browser.get(f"{live}/account/", timeout=30)
    assert account.status_code == 200 and "zhang-local" in account.text
    assert re.search(r'data-testid="amr">fed<', account.text)  # the session records a federated login
    assert 'data-provider="national"' in account.text and "已关联的登录方式" in account.text

    link = FederatedIdentity.objects.get()
    assert link.user == local and not link.created_account and link.last_login_at is not None
    assert link.last_acr == "urn:dgov:loa:2"
    local.refresh_from_db()
    assert local.id_number == ZHANG_ID  # the number is kept now that it is known to match
    assert AuditRecord.objects.filter(action="oidc.upstream.link").count() == 1
    login = AuditRecord.objects.filter(action="identity.login").latest("seq")
    assert login.detail["methods"] == ["fed"] and login.actor_id == str(local.pk)
    assert ZHANG_ID not in json.dumps([r.detail for r in AuditRecord.objects.all()], ensure_ascii=False)

    # The next login goes through the link (the same account, no second link).
    again = brokered_login(_session(sessions), _session(sessions, upstream_user), live)
    assert again.status_code == 302
    assert FederatedIdentity.objects.count() == 1
    hows = [r.detail["how"] for r in AuditRecord.objects.filter(action="oidc.upstream.login").order_by("seq")]
    assert hows == ["linked_now", "linked_login"]


def test_new_person_account_is_created_when_allowed(live, provider, django_user_model, sessions):
    provider(allow_create=True)
    upstream_user = upstream_person(django_user_model, "li-national", LI_ID, name="李四")
    browser = _session(sessions)
    response = brokered_login(browser, _session(sessions, upstream_user), live)
    assert response.status_code == 302

    link = FederatedIdentity.objects.select_related("user").get()
    created = link.user
    assert link.created_account and created.pk != upstream_user.pk
    assert created.kind == "person" and created.display_name == "李四"
    assert created.id_number == LI_ID and created.id_number_digest == blind_index(LI_ID, purpose="resident_id")
    assert created.real_name_level == 2 and created.real_name_verified_at is not None
    assert not created.has_usable_password()
    assert browser.get(f"{live}/account/", timeout=30).text.count(created.username) >= 1
    record = AuditRecord.objects.get(action="oidc.upstream.create_account")
    assert record.detail["level"] == 2 and record.detail["population"] == "unavailable"

    # Without a password the account must keep its only way in: unlinking is refused.
    page = browser.get(f"{live}/account/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    refused = browser.post(
        f"{live}/account/linked-logins/{link.pk}/",
        data={"action": "unlink", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{live}/account/"},
        timeout=30,
    )
    assert refused.status_code == 200 and "尚未设置登录密码" in refused.text
    link.refresh_from_db()
    assert link.unlinked_at is None


def test_upstream_level_is_capped_and_a_self_asserted_number_is_refused(live, provider, django_user_model, sessions):
    provider(allow_create=True, max_level=1)  # this upstream is trusted for nothing more than level 1
    upstream_user = upstream_person(django_user_model, "li-national", LI_ID, name="李四", level=3)
    response = brokered_login(_session(sessions), _session(sessions, upstream_user), live)
    assert response.status_code == 400
    assert "未能将您在该平台的身份与本平台的个人账号对应" in error_text(response)
    assert refusals("level_too_low") and not FederatedIdentity.objects.exists()


def test_acr_mapping_of_a_foreign_provider():
    national = UpstreamProvider(max_level=3, acr_levels={"https://example.gov.cn/loa/high": 3, "*": 2})
    assert broker.trusted_level(national, "https://example.gov.cn/loa/high") == 3
    assert broker.trusted_level(national, "something-else") == 2
    assert broker.trusted_level(national, None) == 2
    assert broker.trusted_level(national, "urn:dgov:loa:1") == 1
    capped = UpstreamProvider(max_level=2, acr_levels={})
    assert broker.trusted_level(capped, "urn:dgov:loa:3") == 2
    assert broker.trusted_level(capped, "unknown") == 1


def test_local_second_factor_is_still_asked(live, provider, django_user_model, sessions, user_password):
    provider()
    local = django_user_model.objects.create_user(
        username="zhang-local",
        password=user_password,
        kind="person",
        id_number_digest=blind_index(ZHANG_ID, purpose="resident_id"),
        real_name_level=2,
    )
    secret = totp.generate_secret()
    identity_services.provision_totp([local], secret, actor="system:test")
    browser = _session(sessions)
    response = brokered_login(browser, _session(sessions, upstream_person(django_user_model, "z", ZHANG_ID)), live)
    assert response.status_code == 302 and response.headers["Location"] == "/login/verify/"
    page = browser.get(f"{live}/login/verify/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = browser.post(
        f"{live}/login/verify/",
        data={"method": "totp", "code": totp.code_at(secret, totp.current_step()), "csrfmiddlewaretoken": token},
        headers={"Referer": f"{live}/login/verify/"},
        allow_redirects=False,
        timeout=30,
    )
    assert done.status_code == 302
    login = AuditRecord.objects.filter(action="identity.login", outcome="success").latest("seq")
    assert login.detail["methods"] == ["fed", "otp", "mfa"]


def test_id_number_from_userinfo_when_the_id_token_lacks_it(
    live, provider, django_user_model, sessions, monkeypatch, user_password
):
    from dgov.oidc.services import tokens

    provider()
    local = django_user_model.objects.create_user(
        username="zhang-local",
        password=user_password,
        kind="person",
        id_number_digest=blind_index(ZHANG_ID, purpose="resident_id"),
        real_name_level=2,
    )
    original = tokens._id_token

    def without_identity(signer, client, grant, *, scopes, **kwargs):
        return original(signer, client, grant, scopes=[s for s in scopes if s != "dgov:identity"], **kwargs)

    monkeypatch.setattr(tokens, "_id_token", without_identity)
    upstream_user = upstream_person(django_user_model, "z", ZHANG_ID)
    response = brokered_login(_session(sessions), _session(sessions, upstream_user), live)
    assert response.status_code == 302
    assert FederatedIdentity.objects.get().user == local


# --- refusals ---------------------------------------------------------------------------------------------


def test_forged_or_replayed_state_is_refused(live, provider, django_user_model, sessions, user_password):
    provider(allow_create=True)
    upstream_user = upstream_person(django_user_model, "li-national", LI_ID)
    browser = _session(sessions)
    forged = browser.get(f"{live}/login/upstream/{SLUG}/callback/?code=abc&state=forged", timeout=30)
    assert forged.status_code == 400 and "登录请求已失效" in error_text(forged)
    assert refusals("bad_state")

    # A callback URL carried to another browser (login CSRF) does not log that browser in.
    callback = at_upstream(_session(sessions, upstream_user), start(_session(sessions), live))
    stolen = browser.get(callback, allow_redirects=False, timeout=30)
    assert stolen.status_code == 400 and len(refusals("bad_state")) == 2
    assert not FederatedIdentity.objects.exists()
    # The failures count against the client IP like failed password logins.
    from dgov.identity.models import LoginThrottle

    assert LoginThrottle.objects.get(scope="ip").failures == 2


def test_nonce_mismatch_is_refused(live, provider, django_user_model, sessions):
    provider(allow_create=True)

    def other_nonce(url):
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query["nonce"] = "not-the-one-the-broker-sent"
        return urlunsplit(parts._replace(query=urlencode(query)))

    upstream_user = upstream_person(django_user_model, "li-national", LI_ID)
    response = brokered_login(_session(sessions), _session(sessions, upstream_user), live, rewrite=other_nonce)
    assert response.status_code == 400 and "未通过校验" in error_text(response)
    assert refusals("nonce_mismatch") and not FederatedIdentity.objects.exists()


def test_tampered_id_token_is_refused(live, provider, django_user_model, sessions, monkeypatch, user_password):
    from dgov.oidc.services import tokens

    provider()
    victim = django_user_model.objects.create_user(
        username="victim",
        password=user_password,
        kind="person",
        id_number_digest=blind_index(ZHANG_ID, purpose="resident_id"),
        real_name_level=2,
    )
    original = tokens._id_token

    def tampered(*args, **kwargs):
        head, body, signature = original(*args, **kwargs).split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        claims["dgov_id_number"] = ZHANG_ID  # claim to be the victim; the signature is the upstream's, for LI_ID
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"{head}.{body}.{signature}"

    monkeypatch.setattr(tokens, "_id_token", tampered)
    upstream_user = upstream_person(django_user_model, "li-national", LI_ID)
    response = brokered_login(_session(sessions), _session(sessions, upstream_user), live)
    assert response.status_code == 400 and "未通过校验" in error_text(response)
    assert refusals("bad_signature")
    assert not FederatedIdentity.objects.filter(user=victim).exists()


def test_disabled_provider_is_refused(live, provider, django_user_model, sessions):
    configured = provider(allow_create=True)
    upstream_user = upstream_person(django_user_model, "li-national", LI_ID)
    browser = _session(sessions)
    callback = at_upstream(_session(sessions, upstream_user), start(browser, live))
    broker.set_enabled(configured, False, actor="system:test")
    late = browser.get(callback, allow_redirects=False, timeout=30)
    assert late.status_code == 404 and "不存在或已停用" in error_text(late)
    again = browser.get(f"{live}/login/upstream/{SLUG}/", allow_redirects=False, timeout=30)
    assert again.status_code == 404
    login_page = browser.get(f"{live}/login/", timeout=30)
    assert "使用国家政务服务平台登录" not in login_page.text
    assert AuditRecord.objects.filter(action="oidc.upstream.disable").count() == 1
    assert not FederatedIdentity.objects.exists()


def test_login_page_offers_enabled_providers(live, provider, sessions):
    provider()
    page = _session(sessions).get(f"{live}/login/?next=/account/", timeout=30)
    assert "使用国家政务服务平台登录" in page.text
    assert f'href="/login/upstream/{SLUG}/?next=%2Faccount%2F"' in page.text


def test_account_refusals_do_not_tell_whether_an_account_exists(
    live, provider, django_user_model, sessions, user_password, department
):
    provider(allow_create=False)
    texts = {}
    upstream_user = upstream_person(django_user_model, "zhang-national", ZHANG_ID)

    def attempt(label):
        response = brokered_login(_session(sessions), _session(sessions, upstream_user), live)
        texts[label] = (response.status_code, error_text(response))

    attempt("no account")
    digest = blind_index(ZHANG_ID, purpose="resident_id")
    official = django_user_model.objects.create_user(
        username="official-zhang",
        password=user_password,
        kind="official",
        department=department,
        id_number_digest=digest,
        real_name_level=2,
    )
    attempt("only an official account")
    official.delete()
    disabled = django_user_model.objects.create_user(
        username="disabled-zhang",
        password=user_password,
        kind="person",
        id_number_digest=digest,
        real_name_level=2,
        is_active=False,
    )
    attempt("a disabled account")
    disabled.delete()
    django_user_model.objects.create_user(
        username="zhang-local", password=user_password, kind="person", id_number_digest=digest, real_name_level=2
    )
    UpstreamProvider.objects.update(max_level=1)
    attempt("an account, but the upstream is not trusted enough")
    assert len(set(texts.values())) == 1, texts
    status, text = next(iter(texts.values()))
    assert status == 400 and "未能将您在该平台的身份与本平台的个人账号对应" in text
    reasons = [r.detail["reason"] for r in refusals()]
    assert reasons == ["no_account", "no_account", "account_unavailable", "level_too_low"]
    assert not FederatedIdentity.objects.exists()


def test_upstream_cancel_is_shown_and_not_counted(live, provider, django_user_model, sessions):
    provider()
    browser = _session(sessions)
    url = start(browser, live)
    state = parse_qs(urlsplit(url).query)["state"][0]
    response = browser.get(
        f"{live}/login/upstream/{SLUG}/callback/?error=access_denied&state={state}", allow_redirects=False, timeout=30
    )
    assert response.status_code == 400 and "取消登录" in error_text(response)
    from dgov.identity.models import LoginThrottle

    assert not LoginThrottle.objects.filter(scope="ip").exists()


def test_unreachable_upstream_is_an_error_page_not_a_500(live, department, sessions):
    broker.create_provider(
        slug=SLUG,
        name_zh="国家政务服务平台",
        issuer="http://127.0.0.1:9",  # nothing listens on the discard port
        client_id="x",
        client_secret="y",
        actor="system:test",
    )
    response = _session(sessions).get(f"{live}/login/upstream/{SLUG}/", allow_redirects=False, timeout=30)
    assert response.status_code == 502 and "暂时无法连接" in error_text(response)
    assert refusals("unavailable")


def test_signing_key_rotation_is_followed(live, provider, django_user_model, sessions, monkeypatch, user_password):
    provider()
    django_user_model.objects.create_user(
        username="zhang-local",
        password=user_password,
        kind="person",
        id_number_digest=blind_index(ZHANG_ID, purpose="resident_id"),
        real_name_level=2,
    )
    upstream_user = upstream_person(django_user_model, "zhang-national", ZHANG_ID)
    assert brokered_login(_session(sessions), _session(sessions, upstream_user), live).status_code == 302
    keys.rotate_key("RS256", actor="system:test")  # the JWKS the broker cached lacks the new kid
    monkeypatch.setattr(upstream, "JWKS_REFETCH_SECONDS", 0.0)
    assert brokered_login(_session(sessions), _session(sessions, upstream_user), live).status_code == 302


# --- the account console -----------------------------------------------------------------------------------


def test_unlink_and_relink_from_the_account_console(live, provider, django_user_model, sessions, user_password):
    provider()
    local = django_user_model.objects.create_user(
        username="zhang-local",
        password=user_password,
        kind="person",
        id_number_digest=blind_index(ZHANG_ID, purpose="resident_id"),
        real_name_level=2,
    )
    upstream_user = upstream_person(django_user_model, "zhang-national", ZHANG_ID)
    browser = _session(sessions)
    assert brokered_login(browser, _session(sessions, upstream_user), live).status_code == 302
    link = FederatedIdentity.objects.get()

    def post(action):
        page = browser.get(f"{live}/account/", timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return browser.post(
            f"{live}/account/linked-logins/{link.pk}/",
            data={"action": action, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{live}/account/"},
            timeout=30,
        )

    done = post("unlink")  # the brokered login itself is a recent authentication
    assert done.status_code == 200 and "已解除与“国家政务服务平台”的关联" in done.text
    link.refresh_from_db()
    assert link.unlinked_at is not None
    # The upstream login no longer opens the account, nor is it linked again by ID number.
    refused = brokered_login(_session(sessions), _session(sessions, upstream_user), live)
    assert refused.status_code == 400 and "已解除" in error_text(refused)
    assert FederatedIdentity.objects.count() == 1

    # Someone else's link cannot be touched.
    other = Client()
    other.force_login(django_user_model.objects.create_user(username="other", password=user_password))
    session = other.session
    session["_dgov_reauth_at"] = 2**31
    session.save()
    assert other.post(f"/account/linked-logins/{link.pk}/", {"action": "relink"}).status_code == 302
    link.refresh_from_db()
    assert link.unlinked_at is not None

    assert post("relink").status_code == 200
    link.refresh_from_db()
    assert link.unlinked_at is None and link.user == local
    assert brokered_login(_session(sessions), _session(sessions, upstream_user), live).status_code == 302
    actions = list(AuditRecord.objects.filter(action__startswith="oidc.upstream.").values_list("action", flat=True))
    assert "oidc.upstream.unlink" in actions and "oidc.upstream.relink" in actions


def test_unlinking_needs_a_recent_reauthentication(client, django_user_model, user_password, live):
    upstream_provider = broker.create_provider(
        slug=SLUG, name_zh="国家政务服务平台", issuer=live, client_id="x", client_secret="y", actor="system:test"
    )
    user = django_user_model.objects.create_user(username="zhang", password=user_password, kind="person")
    link = FederatedIdentity.objects.create(provider=upstream_provider, subject="s-1", user=user)
    client.force_login(user)  # no recorded authentication time: not recent
    response = client.post(f"/account/linked-logins/{link.pk}/", {"action": "unlink"})
    assert response.status_code == 302 and response["Location"].startswith("/account/reauth/")
    link.refresh_from_db()
    assert link.unlinked_at is None


def test_brokered_account_sets_a_first_password_after_logging_in_again_upstream(
    live, provider, django_user_model, sessions
):
    from importlib import import_module

    provider(allow_create=True)
    upstream_user = upstream_person(django_user_model, "li-national", LI_ID, name="李四")
    upstream_browser = _session(sessions, upstream_user)
    browser = _session(sessions)
    assert brokered_login(browser, upstream_browser, live).status_code == 302
    created = FederatedIdentity.objects.select_related("user").get().user
    account = browser.get(f"{live}/account/", timeout=30).text
    assert "设置登录密码" in account and 'href="/account/password/set/"' in account
    # The brokered login itself is recent: the form is there at once.
    assert browser.get(f"{live}/account/password/set/", allow_redirects=False, timeout=30).status_code == 200

    # Some time later the login is no longer recent (older than DGOV_REAUTH_SECONDS).
    store = import_module(django_settings.SESSION_ENGINE).SessionStore(
        session_key=browser.cookies[django_settings.SESSION_COOKIE_NAME]
    )
    store["_dgov_reauth_at"] = store["_dgov_auth_time"] = 1_000_000_000
    store.save()
    stale = browser.get(f"{live}/account/password/set/", allow_redirects=False, timeout=30)
    assert stale.status_code == 302 and stale.headers["Location"].startswith("/account/reauth/")
    reauth = browser.get(f"{live}{stale.headers['Location']}", timeout=30).text
    # No password to ask for: the page offers to log in again through the linked provider.
    assert 'data-testid="reauth-form"' not in reauth
    button = re.search(r'<a class="button button-primary" href="([^"]+)" data-provider="national">', reauth)
    assert button and "通过国家政务服务平台重新登录" in reauth
    href = button.group(1).replace("&amp;", "&")
    assert href == "/login/upstream/national/?next=%2Faccount%2Fpassword%2Fset%2F"

    again = browser.get(f"{live}{href}", allow_redirects=False, timeout=30)
    callback = at_upstream(upstream_browser, again.headers["Location"])
    back = browser.get(callback, allow_redirects=False, timeout=30)
    assert back.status_code == 302 and back.headers["Location"] == "/account/password/set/"
    form = browser.get(f"{live}/account/password/set/", allow_redirects=False, timeout=30)
    assert form.status_code == 200 and 'data-testid="password-set-form"' in form.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    new = "a long passphrase of my own"
    done = browser.post(
        f"{live}/account/password/set/",
        data={"new": new, "confirm": new, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{live}/account/password/set/"},
        allow_redirects=False,
        timeout=30,
    )
    assert done.status_code == 302 and done.headers["Location"] == "/account/"
    created.refresh_from_db()
    assert created.check_password(new)
    assert AuditRecord.objects.filter(action="identity.password.set", actor_id=str(created.pk)).count() == 1

    # With a password the account may now unlink the upstream login (it can still log in).
    page = browser.get(f"{live}/account/", timeout=30)
    assert 'href="/account/password/"' in page.text and "设置登录密码" not in page.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    link = FederatedIdentity.objects.get()
    unlinked = browser.post(
        f"{live}/account/linked-logins/{link.pk}/",
        data={"action": "unlink", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{live}/account/"},
        timeout=30,
    )
    assert unlinked.status_code == 200 and "已解除" in unlinked.text
    link.refresh_from_db()
    assert link.unlinked_at is not None


# --- the id_token checks, one by one ------------------------------------------------------------------------


def test_id_token_validation_rules(live):
    import time

    from dgov.oidc import jose

    metadata = upstream.discover(live)
    signer = keys.active_key("ES256")
    now = int(time.time())
    good = {"iss": live, "aud": "me", "sub": "s", "iat": now, "exp": now + 60, "nonce": "n"}

    def check(claims, **kwargs):
        return upstream.validate_id_token(
            metadata,
            jose.sign(claims, signer),
            client_id="me",
            nonce=kwargs.get("nonce", "n"),
            access_token=kwargs.get("access_token", ""),
        )

    assert check(good)["sub"] == "s"
    cases = [
        ({**good, "iss": "https://elsewhere"}, "bad_claims"),
        ({**good, "aud": "someone-else"}, "bad_claims"),
        ({**good, "aud": ["me", "other"]}, "bad_claims"),  # several audiences need azp = us
        ({**good, "exp": now - 3600}, "bad_claims"),
        ({**good, "iat": now + 3600}, "bad_claims"),
        ({**good, "sub": ""}, "bad_claims"),
        ({**good, "nonce": "other"}, "nonce_mismatch"),
        ({**good, "at_hash": "AAAA"}, "bad_claims"),
    ]
    for claims, code in cases:
        with pytest.raises(upstream.UpstreamError) as caught:
            check(claims, access_token="token")
        assert caught.value.code == code, claims
    assert check({**good, "aud": ["me", "other"], "azp": "me"})["sub"] == "s"
    with pytest.raises(upstream.UpstreamError) as caught:
        upstream.validate_id_token(metadata, "a.b.c", client_id="me", nonce="n")
    assert caught.value.code == "bad_signature"
    head, body, _sig = jose.sign(good, signer).split(".")
    unsigned = f"{jose.b64url_encode(json.dumps({'alg': 'none'}).encode())}.{body}."
    with pytest.raises(upstream.UpstreamError):
        upstream.validate_id_token(metadata, unsigned, client_id="me", nonce="n")


# --- the command line ----------------------------------------------------------------------------------------


def test_upstream_commands(live, capsys, registration):
    client, secret = registration()
    call_command(
        "oidc",
        "upstream",
        "add",
        "--slug",
        SLUG,
        "--name",
        "国家政务服务平台",
        "--issuer",
        live,
        "--client-id",
        client.client_id,
        "--client-secret",
        secret,
        "--acr-level",
        "*=2",
        "--allow-create",
    )
    out = capsys.readouterr().out
    assert f"redirect_uri: {live}/login/upstream/{SLUG}/callback/" in out
    configured = UpstreamProvider.objects.get(slug=SLUG)
    assert configured.client_secret == secret and configured.acr_levels == {"*": 2} and configured.allow_create
    assert "dgov:identity" in configured.scopes
    keys.active_key("RS256")  # keys are made on first use; the upstream has signed nothing yet
    call_command("oidc", "upstream", "check", SLUG)
    out = capsys.readouterr().out
    assert f"issuer: {live}" in out and "(RS256)" in out
    call_command("oidc", "upstream", "list")
    out = capsys.readouterr().out
    assert SLUG in out and "启用" in out and secret not in out
    call_command("oidc", "upstream", "disable", SLUG)
    assert not UpstreamProvider.objects.get(slug=SLUG).enabled
    call_command("oidc", "upstream", "enable", SLUG)
    assert UpstreamProvider.objects.get(slug=SLUG).enabled
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="已存在"):
        call_command(
            "oidc",
            "upstream",
            "add",
            "--slug",
            SLUG,
            "--name",
            "x",
            "--issuer",
            live,
            "--client-id",
            "x",
            "--client-secret",
            "y",
        )
    with pytest.raises(CommandError, match="不存在"):
        call_command("oidc", "upstream", "disable", "nope")
    assert AuditRecord.objects.filter(action="oidc.upstream.create").count() == 1


# --- the population library cross-check of new accounts ------------------------------------------------------


@pytest.fixture
def population(department, province):
    """population.person installed with 李四 (LI_ID, normal) and 王故去 (ZHANG_ID, deceased)."""
    install_population(department, province, [(LI_ID, "李四", "normal"), (ZHANG_ID, "王故去", "deceased")])


def test_new_account_is_cross_checked_with_the_population_library(
    live, provider, django_user_model, sessions, population
):
    provider(allow_create=True)
    li = upstream_person(django_user_model, "li-national", LI_ID, name="李四")
    assert brokered_login(_session(sessions), _session(sessions, li), live).status_code == 302
    record = AuditRecord.objects.get(action="oidc.upstream.create_account")
    assert record.detail["population"] == "verified" and record.detail["level"] == 2

    # The library knows this number as someone else, now deceased: no account is made for it.
    impostor = upstream_person(django_user_model, "zhang-national", ZHANG_ID, name="张三")
    refused = brokered_login(_session(sessions), _session(sessions, impostor), live)
    assert refused.status_code == 400 and "未能将您在该平台的身份" in error_text(refused)
    assert refusals("population_mismatch")
    assert FederatedIdentity.objects.count() == 1


def test_admin_lists_providers_and_disables_them_through_the_service(client, django_user_model, live):
    configured = broker.create_provider(
        slug=SLUG, name_zh="国家政务服务平台", issuer=live, client_id="x", client_secret="s3cret", actor="system:test"
    )
    admin = django_user_model.objects.create_superuser(username="root", password="x" * 16, kind="admin")
    client.force_login(admin)
    page = client.get("/admin/oidc/upstreamprovider/")
    assert page.status_code == 200 and "停用所选上游身份提供方" in page.content.decode()
    detail = client.get(f"/admin/oidc/upstreamprovider/{configured.pk}/change/").content.decode()
    assert "s3cret" not in detail
    response = client.post(
        "/admin/oidc/upstreamprovider/",
        {"action": "disable_providers", "_selected_action": [configured.pk]},
    )
    assert response.status_code == 302
    configured.refresh_from_db()
    assert not configured.enabled
    assert AuditRecord.objects.filter(action="oidc.upstream.disable").count() == 1
