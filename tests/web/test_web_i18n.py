"""Chinese by default, English on request; translation catalogues compiled without gettext."""

import polib
import pytest
from django.core.management import call_command
from django.utils import translation

from dgov.kernel.management.commands.i18n_compile import compile_po, is_stale, locale_dirs, po_files

pytestmark = pytest.mark.django_db


def test_default_language_is_simplified_chinese(client):
    html = client.get("/").content.decode()
    assert '<html lang="zh-Hans">' in html
    assert "平台能力" in html


def test_language_switch_to_english_and_back(client):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/divisions/"})
    assert response.status_code == 302
    assert response["Location"] == "/divisions/"
    html = client.get("/").content.decode()
    assert '<html lang="en">' in html
    assert "Platform capabilities" in html
    assert "平台能力" not in html
    assert "Administrative divisions" in client.get("/divisions/").content.decode()
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert "平台能力" in client.get("/").content.decode()


def test_browser_preference_for_english_is_honoured(client):
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert "Platform capabilities" in html
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert "平台能力" in html


def test_python_strings_are_translated_too():
    with translation.override("en"):
        assert str(translation.gettext("工作台仅向工作人员和系统管理员开放。")) == (
            "The workbench is open to officials and administrators only."
        )


def test_english_catalogue_is_complete():
    catalogues = [p for p in po_files(locale_dirs()) if p.parts[-3] == "en"]
    assert catalogues, "no English catalogue found"
    for path in catalogues:
        catalogue = polib.pofile(str(path))
        missing = [e.msgid for e in catalogue.untranslated_entries()] + [
            e.msgid for e in catalogue.fuzzy_entries()
        ]
        assert missing == [], f"{path}: untranslated {missing[:10]}"


def test_i18n_compile_writes_mo_files_that_gettext_reads(tmp_path, settings):
    messages = tmp_path / "locale" / "en" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Language": "en"}
    po.append(polib.POEntry(msgid="办事服务", msgstr="Services"))
    po.append(polib.POEntry(msgid="待审核", msgstr="Guess", flags=["fuzzy"]))
    po.save(str(messages / "django.po"))
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    assert is_stale(messages / "django.po")
    call_command("i18n_compile")
    mo = polib.mofile(str(messages / "django.mo"))
    found = {e.msgid: e.msgstr for e in mo}
    assert found["办事服务"] == "Services"
    assert "待审核" not in found  # fuzzy entries are not shipped
    assert not is_stale(messages / "django.po")


def test_i18n_compile_check_fails_on_untranslated(tmp_path, settings):
    from django.core.management.base import CommandError

    messages = tmp_path / "locale" / "en" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    po = polib.POFile()
    po.metadata = {"Content-Type": "text/plain; charset=UTF-8"}
    po.append(polib.POEntry(msgid="数据开放", msgstr=""))
    po.save(str(messages / "django.po"))
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    with pytest.raises(CommandError, match="1 untranslated"):
        call_command("i18n_compile", "--check")
    mo_path, count = compile_po(messages / "django.po")
    assert mo_path.exists() and count == 0
