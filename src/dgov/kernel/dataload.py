"""Loading sets of definitions (规则集、证照目录) from YAML or JSON files, and the load report.

Several apps load a list of definitions kept as code in a file (quality rule sets, the licence-type
catalogue …): they read the file within a size bound, parse it as JSON or YAML, check every entry,
and write nothing unless all are good. The shared parts live here:

- :func:`read_text` reads a bounded UTF-8 file (BOM allowed) and names its format by its suffix;
- :func:`parse_document` parses a YAML or JSON text into plain data;
- :class:`LoadReport` says what a load did or would do; each app subclasses it to give the
  wording (which noun: 条规则, 个类型 …) as ``gettext_noop`` message ids, translated when shown.

Each app keeps its own error class (a ``ValueError``) and the shape check of the parsed data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from django.utils.translation import gettext as _

__all__ = ["MAX_BYTES", "LoadReport", "format_of", "parse_document", "read_text"]

MAX_BYTES = 4 * 1024 * 1024


@dataclass
class LoadReport:
    """What a load did or would do: entries created, updated, unchanged, and every bad entry with its problems.

    Subclasses set the three message ids below (marked with ``gettext_noop`` so that makemessages
    finds them); they are translated when the report is shown. ``errors`` holds
    ``(index, code, messages)`` with ``index`` from 1 (0 for the set as a whole).
    """

    #: Head line when some entries are bad; ``%(n)d`` is their count.
    rejected_text: ClassVar[str]
    #: One line per bad entry: ``%(index)d``, ``%(code)s``, ``%(messages)s``.
    entry_text: ClassVar[str]
    #: The summary when all are good: ``%(created)d``, ``%(updated)d``, ``%(unchanged)d``.
    summary_text: ClassVar[str]

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[tuple[int, str, list[str]]] = field(default_factory=list)
    source: str = ""

    @property
    def ok(self) -> bool:
        """True when every entry was good (and the set was written, unless a dry run)."""
        return not self.errors

    def to_text(self) -> str:
        """The report for people (Chinese), one line per bad entry."""
        if self.errors:
            lines = [_(self.rejected_text) % {"n": len(self.errors)}]
            for index, code, messages in self.errors:
                lines.append(
                    _(self.entry_text) % {"index": index, "code": code or "—", "messages": "；".join(messages)}
                )
            return "\n".join(lines)
        return _(self.summary_text) % {
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "ok": self.ok,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": [{"index": i, "code": c, "messages": m} for i, c, m in self.errors],
        }


def format_of(path: str | Path) -> str:
    """``"json"`` for a ``.json`` file, ``"yaml"`` for ``.yaml``/``.yml``, else ``""`` (guess from the text)."""
    suffix = Path(path).suffix.lower()
    return "json" if suffix == ".json" else "yaml" if suffix in (".yaml", ".yml") else ""


def read_text(
    path: str | Path,
    *,
    error: type[ValueError],
    too_large: str,
    not_utf8: str,
    max_bytes: int = MAX_BYTES,
) -> str:
    """The text of a UTF-8 file (BOM allowed) of at most ``max_bytes``.

    Raises ``error`` with a Chinese message when the file cannot be read, is larger than
    ``max_bytes`` (message ``too_large``) or is not UTF-8 (message ``not_utf8``); the two
    messages are given already translated by the caller.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(_("无法读取文件 %(path)s：%(error)s") % {"path": path, "error": exc.strerror}) from None
    if len(raw) > max_bytes:
        raise error(too_large)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(not_utf8) from None


def parse_document(text: str, *, fmt: str = "", error: type[ValueError]) -> Any:
    """The data of a YAML or JSON text (``fmt`` "yaml"/"json", else guessed from the first character).

    A text that looks like JSON but is not is read as YAML unless ``fmt`` is "json". Raises
    ``error`` with a Chinese message when the text is neither.
    """
    import yaml

    if fmt == "json" or (not fmt and text.lstrip()[:1] in ("[", "{")):
        try:
            return json.loads(text)
        except ValueError as exc:
            if fmt == "json":
                raise error(_("不是有效的 JSON：%(error)s") % {"error": exc}) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(_("不是有效的 YAML/JSON：%(error)s") % {"error": str(exc).splitlines()[0]}) from None
