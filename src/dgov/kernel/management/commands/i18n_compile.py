"""``dgov i18n_compile``: compile every translation catalogue (.po) to its binary form (.mo).

Django's own ``compilemessages`` shells out to GNU gettext's ``msgfmt``, which a fresh machine
or an offline intranet host may not have; polib writes the same .mo format in pure Python, so
``make setup`` needs nothing beyond the Python dependencies.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import polib
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def locale_dirs() -> list[Path]:
    """The locale directories of the project: settings.LOCALE_PATHS and each dgov app's ``locale/``."""
    found: list[Path] = []
    candidates = [Path(p) for p in settings.LOCALE_PATHS]
    candidates += [
        Path(cfg.path) / "locale" for cfg in apps.get_app_configs() if cfg.name.startswith("dgov.")
    ]
    for path in candidates:
        resolved = path.resolve()
        if resolved.is_dir() and resolved not in found:
            found.append(resolved)
    return found


def po_files(directories: Iterable[Path]) -> list[Path]:
    """Every ``<lang>/LC_MESSAGES/*.po`` under the given locale directories, sorted."""
    files: set[Path] = set()
    for directory in directories:
        files.update(directory.glob("*/LC_MESSAGES/*.po"))
    return sorted(files)


def is_stale(po_path: Path) -> bool:
    """True when the .mo beside ``po_path`` is missing or older than the .po."""
    mo_path = po_path.with_suffix(".mo")
    return not mo_path.exists() or mo_path.stat().st_mtime < po_path.stat().st_mtime


def compile_po(po_path: Path, *, include_fuzzy: bool = False) -> tuple[Path, int]:
    """Compile one .po file to the .mo beside it; returns the .mo path and the number of messages.

    The .mo is written to a temporary file and renamed, so parallel runs (test workers) never
    leave a half-written catalogue for a running process to load.
    """
    catalogue = polib.pofile(str(po_path), wrapwidth=0)
    if not include_fuzzy:
        # gettext ignores fuzzy entries, so must we; they are machine guesses awaiting review.
        for entry in catalogue.fuzzy_entries():
            catalogue.remove(entry)
    mo_path = po_path.with_suffix(".mo")
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".mo", dir=str(po_path.parent))
    os.close(fd)
    try:
        catalogue.save_as_mofile(tmp_name)
        os.replace(tmp_name, mo_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    translated = len([e for e in catalogue if e.translated() and not e.obsolete])
    return mo_path, translated


class Command(BaseCommand):
    """Compile the project's .po catalogues to .mo without GNU gettext."""

    help = "Compile every .po catalogue of the project (LOCALE_PATHS and dgov apps) to .mo using polib."

    def add_arguments(self, parser):
        """Options: only stale catalogues, or a strict check for untranslated entries."""
        parser.add_argument(
            "--stale-only", action="store_true", help="Skip catalogues whose .mo is newer than the .po."
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Fail when a catalogue has untranslated or fuzzy entries.",
        )

    def handle(self, *args, **options):
        """Compile each catalogue and report how many messages each holds."""
        directories = locale_dirs()
        files = po_files(directories)
        if not files:
            self.stdout.write("No .po catalogues found in: " + ", ".join(map(str, directories)))
            return
        problems = []
        for po_path in files:
            if options["check"]:
                catalogue = polib.pofile(str(po_path))
                untranslated = [e.msgid for e in catalogue.untranslated_entries()]
                fuzzy = [e.msgid for e in catalogue.fuzzy_entries()]
                if untranslated or fuzzy:
                    problems.append(f"{po_path}: {len(untranslated)} untranslated, {len(fuzzy)} fuzzy")
            if options["stale_only"] and not is_stale(po_path):
                continue
            mo_path, count = compile_po(po_path)
            self.stdout.write(f"{mo_path} ({count} messages)")
        if problems:
            raise CommandError("Incomplete translations:\n" + "\n".join(problems))
