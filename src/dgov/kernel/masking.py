"""Masking (脱敏) of personal data for display, exports and logs.

Every function takes any value (``None``, empty, too short, wrongly typed) without raising and
returns a string; ``None`` and blank values give ``""``. Surrounding whitespace is removed first.
The mask character is ``*``.

=====================  ==========================================================================
function               rule
=====================  ==========================================================================
``mask_id_number``     居民身份证号码: keep the first 6 (the birth region) and the last 4 characters,
                       mask the rest one-for-one: ``370102199001011234`` → ``370102********1234``.
                       Values shorter than 11 keep only their first and last character (values of
                       1–2 characters are masked entirely; the same applies to ``mask_uscc``).
``mask_phone``         mobile (optionally ``+86``/``86``/``0086``-prefixed): keep the first 3 and
                       last 4 digits, ``13812345678`` → ``138****5678``, the prefix is kept.
                       Landline ``0531-88886666``: keep the area code and the last 4 digits. Other
                       values of 8+ characters keep their first 3 and last 4; shorter ones only
                       their last character (none below 3 characters).
``mask_name``          keep the first character (the surname in most Chinese names), mask the rest
                       one-for-one: ``张三`` → ``张*``, ``欧阳娜娜`` → ``欧***``; a one-character value
                       becomes ``*``. Separators (``·``, spaces) are kept:
                       ``阿依古丽·买买提`` → ``阿***·***``, ``John Smith`` → ``J*** *****``.
``mask_address``       keep the administrative-division part down to the county level (province/
                       autonomous region, city/prefecture/league, county/district/county-level
                       city/banner) and replace everything after it by a fixed ``****``, so the
                       length of the street part is not revealed: ``山东省济南市历下区泉城路1号`` →
                       ``山东省济南市历下区****``. Division names are recognized from the GB/T 2260
                       name list shipped with python-stdnum (current and historical names), and
                       by their suffixes (省/自治区, 市/自治州/地区/盟, 区/县/市/旗) when a name is
                       not in that list. With no recognizable division, the first 2 characters
                       are kept.
``mask_uscc``          统一社会信用代码: keep the first 8 (registration authority, entity type and
                       division code) and the last 2 characters, mask the rest one-for-one:
                       ``91370102MA3C12345X`` → ``91370102********5X``.
=====================  ==========================================================================
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

__all__ = ["MASK", "mask_address", "mask_id_number", "mask_name", "mask_phone", "mask_uscc"]

MASK = "*"
ADDRESS_MASK = MASK * 4

# Fallback for names missing from the list: each level is a short run of characters ending in
# its level's suffix; no digits, spaces or street words (路 街 巷 弄 号 村 组), and the length caps
# stop a lazy match from running into a street or market name ("泉城路农贸市场").
_BODY = r"[^\d\s路街巷弄号村组]"
_DIVISIONS = re.compile(
    rf"^(?:{_BODY}{{1,8}}?(?:省|自治区|特别行政区))?"
    rf"(?:{_BODY}{{1,12}}?(?:市|自治州|地区|盟))?"
    rf"(?:{_BODY}{{1,12}}?(?:区|县|市|旗))?"
)
_MOBILE = re.compile(r"^(?P<prefix>(?:\+86|0086|86)?[\s-]?)(?P<number>1\d{10})$")
_LANDLINE = re.compile(r"^(?P<area>0\d{2,3}[\s-])(?P<number>\d{5,8})(?P<ext>[\s-]\d{1,6})?$")
_SEPARATORS = frozenset("·•・. -")


def _text(value) -> str:
    """Return ``value`` as a stripped string ("" for None)."""
    if value is None:
        return ""
    return str(value).strip()


def _keep(text: str, head: int, tail: int) -> str:
    """Keep ``head`` leading and ``tail`` trailing characters, masking the middle one-for-one."""
    hidden = len(text) - head - tail
    if hidden <= 0:
        return _fallback(text)
    return text[:head] + MASK * hidden + (text[-tail:] if tail else "")


def _fallback(text: str) -> str:
    """Mask a value too short for its normal rule: keep at most its first and last character."""
    if len(text) <= 2:
        return MASK * len(text)
    return text[0] + MASK * (len(text) - 2) + text[-1]


def mask_id_number(value) -> str:
    """Mask a resident ID number: first 6 and last 4 kept (``370102********1234``)."""
    text = _text(value)
    if len(text) < 11:
        return _fallback(text)
    return _keep(text, 6, 4)


def mask_phone(value) -> str:
    """Mask a phone number: ``138****5678``; a ``+86`` prefix or landline area code is kept."""
    text = _text(value)
    if not text:
        return ""
    mobile = _MOBILE.match(text)
    if mobile:
        number = mobile["number"]
        return mobile["prefix"] + number[:3] + MASK * 4 + number[-4:]
    landline = _LANDLINE.match(text)
    if landline:
        return landline["area"] + _keep(landline["number"], 0, 4) + (landline["ext"] or "")
    if len(text) >= 8:
        return _keep(text, 3, 4)
    if len(text) <= 2:
        return MASK * len(text)
    return MASK * (len(text) - 1) + text[-1]


def mask_name(value) -> str:
    """Mask a person's name: first character kept (``张*``, ``欧***``), separators kept."""
    text = _text(value)
    if len(text) <= 1:
        return MASK * len(text)
    return text[0] + "".join(ch if ch in _SEPARATORS else MASK for ch in text[1:])


@lru_cache(maxsize=1)
def _division_names() -> dict[str, frozenset[int]]:
    """Known GB/T 2260 division names → levels (1 province, 2 city, 3 county), from python-stdnum."""
    import stdnum.cn

    levels: dict[str, set[int]] = {}
    try:
        lines = Path(stdnum.cn.__file__).with_name("loc.dat").read_text("utf-8").splitlines()
    except OSError:  # pragma: no cover - stdnum is a dependency; the suffix rules still work
        return {}
    for line in lines:
        # "37 province="山东省"" then "  0102 county="[1983-]历下区"" (validity years optional).
        match = re.match(r'^\s*(\d{2}|\d{4}) (?:province|county)="(?:\[[^\]]*\])?([^"]+)"', line)
        if not match:
            continue
        code, name = match.groups()
        if name in _PLACEHOLDER_NAMES:
            continue
        level = 1 if len(code) == 2 or code == "0000" else 2 if code.endswith("00") else 3
        levels.setdefault(name, set()).add(level)
    return {name: frozenset(found) for name, found in levels.items()}


_PLACEHOLDER_NAMES = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})


@lru_cache(maxsize=1)
def _division_index() -> dict[str, tuple[tuple[str, frozenset[int]], ...]]:
    """Division names (2 to 12 characters) by their first two characters, longest first."""
    index: dict[str, list[tuple[str, frozenset[int]]]] = {}
    for name, levels in _division_names().items():
        if 2 <= len(name) <= 12:
            index.setdefault(name[:2], []).append((name, levels))
    return {key: tuple(sorted(names, key=lambda item: -len(item[0]))) for key, names in index.items()}


def _known_division_prefix(text: str) -> str:
    """The longest chain of known division names, each of a lower level, at the start of ``text``."""
    index = _division_index()
    position, level = 0, 0
    while level < 3:
        for name, levels in index.get(text[position : position + 2], ()):
            deeper = [found for found in levels if found > level]
            if deeper and text.startswith(name, position):
                position += len(name)
                level = min(deeper)
                break
        else:
            break
    return text[:position]


def mask_address(value) -> str:
    """Mask an address after its division part (``山东省济南市历下区****``)."""
    text = _text(value)
    if not text:
        return ""
    division = _known_division_prefix(text) or _DIVISIONS.match(text).group(0)
    if not division:
        return text[:2] + ADDRESS_MASK if len(text) > 2 else MASK * len(text)
    if len(division) == len(text):
        return text
    return division + ADDRESS_MASK


def mask_uscc(value) -> str:
    """Mask a unified social credit code: first 8 and last 2 kept (``91370102********5X``)."""
    text = _text(value)
    if len(text) < 11:
        return _fallback(text)
    return _keep(text, 8, 2)
