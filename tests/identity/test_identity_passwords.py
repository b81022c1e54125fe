"""Password policy (ASVS L2): length 12–256, common and predictable passwords refused, no composition rules."""

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "lowercaseonlypassphrase",
        "我爱北京天安门广场的早晨",
        "泉城 济南 大明湖 趵突泉",
        "x" * 3 + "y7!Tq9#mP2vL",
        "a long passphrase " * 7,  # 126 characters
        ("passphrase-with-128-characters!" * 5)[:128],
        ("two hundred fifty-six chars; " * 9)[:256],
    ],
)
def test_long_passphrases_of_any_characters_are_accepted(password):
    validate_password(password)


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short-pass1", "password_too_short"),  # 11 characters
        ("x" * 257, "password_too_long"),
        ("password1234", "password_too_common"),
        ("iloveyou2026!!", "password_too_common"),
        ("woaini1314520", "password_too_common"),
        ("qq123456789012", "password_too_common"),
        ("aaaaaaaaaaaa", "password_predictable"),
        ("abcabcabcabc", "password_predictable"),
        ("qwertyuiop123", "password_predictable"),
        ("1qaz2wsx3edc", "password_predictable"),
        ("123456789012", "password_predictable"),
        ("zyxwvutsrqponm", "password_predictable"),
    ],
)
def test_weak_passwords_are_refused(password, code):
    with pytest.raises(ValidationError) as excinfo:
        validate_password(password)
    assert code in [error.code for error in excinfo.value.error_list]


def test_password_similar_to_the_account_is_refused(django_user_model):
    user = django_user_model(username="zhangweiming2026", display_name="张伟明")
    with pytest.raises(ValidationError):
        validate_password("zhangweiming2026", user=user)


def test_existing_short_demo_password_still_logs_in(client, django_user_model):
    # The policy applies when a password is set; the demo's published password keeps working.
    django_user_model.objects.create(username="citizen", kind="person", password=make_password("dgov-demo-2026"))
    response = client.post("/login/", {"username": "citizen", "password": "dgov-demo-2026"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_no_forced_rotation_by_default_and_expiry_when_a_profile_asks(client, citizen, user_password, settings):
    from datetime import timedelta

    from django.utils import timezone

    citizen.password_changed_at = timezone.now() - timedelta(days=400)
    citizen.save()
    client.post("/login/", {"username": "citizen1", "password": user_password})
    assert client.get("/divisions/").status_code == 200  # default: no maximum age
    client.logout()

    settings.PASSWORD_MAX_AGE_DAYS = 90
    client.post("/login/", {"username": "citizen1", "password": user_password})
    response = client.get("/divisions/")
    assert response.status_code == 302 and response["Location"] == "/account/password/"
    assert client.get("/account/password/").status_code == 200
    response = client.post(
        "/account/password/",
        {"current": user_password, "new": "a fresh long passphrase", "confirm": "a fresh long passphrase"},
    )
    assert response.status_code == 302
    assert client.get("/divisions/").status_code == 200
