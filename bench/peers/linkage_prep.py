"""Input preparation shared by the linkage peers (Splink, recordlinkage) in ``bench/bench_linkage.py``.

Runs in the peers' own virtualenv (``bench/.venv-linkage-peers``), never in dgov's. Both peers get
exactly the same prepared tables, built the way a data engineer would clean Chinese person records
before handing them to a general-purpose linkage library — format clean-up, nothing that needs
linkage knowledge:

* every text NFKC-normalized (full-width digits and letters become ASCII) and trimmed;
* names without spaces and middle dots; the family name is the first character (the two-character
  compound surnames of the generator recognized), the rest the given name; toneless pinyin of the
  family name, the given name and the whole name (``pypinyin``), so homophones can agree and the
  blocking keys can use it;
* birth dates in any of ``1990-01-02``, ``1990/01/02``, ``1990年1月2日``, ``19900102`` written as
  ``1990-01-02`` (digits kept as they are, so a swapped digit stays comparable);
* ID numbers upper case without spaces or hyphens; sex as ``M``/``F`` from 男/女, 1/2, M/F;
* phones reduced to their digits, a leading country code 86 dropped;
* addresses without white space and punctuation.

What dgov does beyond this — 15- to 18-digit ID upgrades, check-character validation, look-alike
characters, division names stripped from addresses, joint address-and-phone evidence — is the
engine's own work and not given to the peers.

A spec file (JSON) describes the run::

    {"tables": [{"name": "police", "path": "…csv", "id_column": "记录号",
                 "columns": {"姓名": "full_name", …}}, …],
     "threshold": 0.9, "floor": 0.01, "pairs": "out.csv"}
"""

from __future__ import annotations

import json
import re
import resource
import sys
import time
import unicodedata
from pathlib import Path

import pandas as pd
from pypinyin import Style, lazy_pinyin

COMPOUND_SURNAMES = frozenset(
    ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "司徒", "夏侯")
)
COLUMNS = (
    "unique_id",
    "full_name",
    "family",
    "given",
    "name_py",
    "family_py",
    "given_py",
    "birth",
    "birth_year",
    "birth_md",
    "id_number",
    "sex",
    "phone",
    "address",
)
_NAME_NOISE = re.compile(r"[\s·•・.\-_]+")
_ADDRESS_NOISE = re.compile(r"[\s,，。.、;；:：'\"“”‘’()（）\[\]【】#\-—_/\\]+")
_DATE = re.compile(r"^(\d{4})\D*(\d{1,2})\D*(\d{1,2})\D*$")
_SEX = {"男": "M", "1": "M", "M": "M", "女": "F", "2": "F", "F": "F"}


def load_spec(path: str) -> dict:
    """Read the run's spec file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _nfkc(value) -> str | None:
    """NFKC-normalized, trimmed text, or None when empty."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = unicodedata.normalize("NFKC", str(value)).strip()
    return text or None


def _pinyin(text: str | None) -> str | None:
    """Toneless pinyin of ``text`` without separators."""
    return "".join(lazy_pinyin(text, style=Style.NORMAL)) if text else None


def _date(value: str | None) -> str | None:
    """``YYYY-MM-DD`` from the common formats, without calendar validation."""
    if not value:
        return None
    if value.isdigit() and len(value) == 8:
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    match = _DATE.match(value)
    if not match:
        return None
    year, month, day = match.groups()
    return f"{year}-{int(month):02d}-{int(day):02d}"


def _phone(value: str | None) -> str | None:
    """Digits only, without a leading 86 country code."""
    if not value:
        return None
    digits = "".join(c for c in value if c.isdigit())
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits or None


def _identifier(value: str | None) -> str | None:
    """Upper case, without spaces and hyphens."""
    if not value:
        return None
    return value.upper().replace(" ", "").replace("-", "") or None


def _split(name: str | None) -> tuple[str | None, str | None]:
    """(family name, given name) of a cleaned Chinese full name."""
    if not name:
        return None, None
    if len(name) >= 3 and name[:2] in COMPOUND_SURNAMES:
        return name[:2], name[2:] or None
    return name[0], name[1:] or None


def prepare_table(table: dict) -> pd.DataFrame:
    """One table as a DataFrame of the prepared :data:`COLUMNS` (all strings, None when missing)."""
    raw = pd.read_csv(table["path"], dtype=str, keep_default_na=False, encoding="utf-8")
    by_role = {role: column for column, role in table["columns"].items()}

    def column(role: str) -> list[str | None]:
        """The NFKC-normalized values of the column mapped to ``role`` (all None when none is)."""
        name = by_role.get(role)
        return [_nfkc(v) for v in raw[name]] if name else [None] * len(raw)

    cache: dict[str | None, tuple] = {}
    names = []
    for value in column("full_name"):
        if value not in cache:
            full = _NAME_NOISE.sub("", value) if value else None
            full = full or None
            family, given = _split(full)
            cache[value] = (full, family, given, _pinyin(full), _pinyin(family), _pinyin(given))
        names.append(cache[value])
    births = [_date(v) for v in column("birth_date")]
    out = pd.DataFrame(
        {
            "unique_id": raw[table["id_column"]].str.strip(),
            "full_name": [n[0] for n in names],
            "family": [n[1] for n in names],
            "given": [n[2] for n in names],
            "name_py": [n[3] for n in names],
            "family_py": [n[4] for n in names],
            "given_py": [n[5] for n in names],
            "birth": births,
            "birth_year": [b[:4] if b else None for b in births],
            "birth_md": [b[5:] if b else None for b in births],
            "id_number": [_identifier(v) for v in column("identifier")],
            "sex": [_SEX.get(v.upper()) if v else None for v in column("sex")],
            "phone": [_phone(v) for v in column("phone")],
            "address": [(_ADDRESS_NOISE.sub("", v) or None) if v else None for v in column("address")],
        },
        columns=list(COLUMNS),
    )
    return out.astype(object).where(out.notna(), None)


def emit(result: dict) -> None:
    """Print the run's result as one JSON line (the bench reads the last line of stdout), with peak memory."""
    result["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class Clock:
    """Phase timings of a peer run, from the moment the inputs start being read."""

    def __init__(self) -> None:
        """Start the clock."""
        self.start = self.last = time.perf_counter()
        self.phases: dict[str, float] = {}

    def lap(self, name: str) -> None:
        """Close phase ``name``."""
        now = time.perf_counter()
        self.phases[name] = round(now - self.last, 3)
        self.last = now

    @property
    def total(self) -> float:
        """Seconds since the start."""
        return round(time.perf_counter() - self.start, 3)
