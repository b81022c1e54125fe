"""Chinese-aware normalization of the values that entity resolution compares.

Every function here takes one raw cell (any text, possibly empty) and returns a normalized value or
``None`` for "no information". The engine calls them once per *distinct* value of a column, so they
favour clarity over micro-optimization, with per-character caches where a table is consulted.

* Full-width/half-width and compatibility forms: Unicode NFKC (``１２３ＡＢＣ`` → ``123ABC``,
  the ideographic space → a space).
* Look-alike characters (形近字): :data:`LOOKALIKE_GROUPS`, a small hand-made table of characters
  that are commonly mistyped or misread for one another, plus a few traditional forms of common
  surname characters; each maps to one canonical member, so two names that differ only there get
  the same *canonical* form.
* Pinyin: toneless pinyin per character from pypinyin's dictionaries (shipped with the package,
  nothing is downloaded), with the surname readings of heteronymous surname characters (单 shan,
  曾 zeng, 解 xie …); homophones (同音字) then have equal pinyin. A *fuzzy* pinyin folds the
  distinctions that many speakers do not make (zh/z, ch/c, sh/s, n/l, -ang/-an, -eng/-en, -ing/-in).
* Dates: ``1990-01-02``, ``1990/1/2``, ``1990年1月2日``, ``19900102`` … → ``19900102``; a
  transposition can produce a month 13, so the digits are kept without calendar validation.
* Identifiers: resident ID numbers (GB 11643, 15-digit first-generation numbers upgraded to 18
  digits) and USCCs (GB 32100), checked with :mod:`dgov.kernel.validators`.
"""

from __future__ import annotations

import datetime
import functools
import re
import time
import unicodedata
from dataclasses import dataclass

from pypinyin import Style, lazy_pinyin

from dgov.kernel import validators

# --- look-alike characters -----------------------------------------------------------------------

# Each string is one group of characters that are confused for one another in handwriting, OCR or
# input-method selection; the first character is the group's canonical form.
LOOKALIKE_GROUPS: tuple[str, ...] = (
    "己已巳",
    "戊戌戍",
    "未末",
    "日曰",
    "士土",
    "干千",
    "人入",
    "大犬",
    "天夭",
    "木术",
    "白自",
    "由甲申",
    "刀力",
    "石右",
    "午牛",
    "失矢",
    "免兔",
    "乌鸟",
    "斤斥",
    "辨辩辫瓣",
    "侯候",
    "晴睛",
    "拔拨",
    "崇祟",
    "茶荼",
    "折拆",
    "汨汩",
    "刺剌",
    "淮准",
    "卷券",
    "历厉",
    "仑仓",
    "冶治",
    "渴喝",
    "杨扬",
    "鸣呜",
    "洗冼",
    "戎戒",
    "旦且",
    "苟荀",
    "幻幼",
    "颖颍",
    "祎袆",
    "莹萤",
    "琅瑯",
    "娇骄",
    "睿叡",
)

# Traditional forms of frequent surname and given-name characters (1:1, so they fit the same table).
TRADITIONAL_FORMS: dict[str, str] = {
    "張": "张",
    "陳": "陈",
    "劉": "刘",
    "黃": "黄",
    "趙": "赵",
    "吳": "吴",
    "鄭": "郑",
    "楊": "杨",
    "許": "许",
    "華": "华",
    "國": "国",
    "偉": "伟",
    "麗": "丽",
    "龍": "龙",
    "紅": "红",
    "軍": "军",
    "蘭": "兰",
    "鳳": "凤",
    "萬": "万",
    "葉": "叶",
    "蕭": "萧",
    "羅": "罗",
    "馬": "马",
    "孫": "孙",
    "錢": "钱",
    "韓": "韩",
    "馮": "冯",
    "鄧": "邓",
    "蘇": "苏",
    "盧": "卢",
    "譚": "谭",
}


def _canonical_table() -> dict[int, str]:
    """The ``str.translate`` table: every look-alike or traditional form → its canonical character."""
    table: dict[int, str] = {}
    for group in LOOKALIKE_GROUPS:
        for char in group[1:]:
            table[ord(char)] = group[0]
    for traditional, simplified in TRADITIONAL_FORMS.items():
        table[ord(traditional)] = table.get(ord(simplified), simplified)
    return table


CANONICAL = _canonical_table()


def canonical(text: str) -> str:
    """``text`` with look-alike and traditional characters replaced by their canonical forms."""
    return text.translate(CANONICAL)


# --- general text ----------------------------------------------------------------------------------

# Separators inside names: middle dots of minority and foreign names, spaces, hyphens, periods.
_NAME_NOISE = re.compile(r"[\s·•・‧.\-_'’()（）\[\]]+")
_ADDRESS_NOISE = re.compile(r"[\s,，。.、;；:：'\"“”‘’()（）\[\]【】#＃\-—_/\\]+")


def text(value: object) -> str | None:
    """NFKC-normalized, trimmed text with runs of white space collapsed; None when empty."""
    if value is None:
        return None
    normalized = value if isinstance(value, str) else str(value)
    if not normalized.isascii() and not unicodedata.is_normalized("NFKC", normalized):
        normalized = unicodedata.normalize("NFKC", normalized)
    return " ".join(normalized.split()) or None


def compact_text(value: object) -> str | None:
    """Free text for comparison: NFKC, lower case, no white space."""
    normalized = text(value)
    if normalized is None:
        return None
    return normalized.lower().replace(" ", "") or None


# --- names ---------------------------------------------------------------------------------------

COMPOUND_SURNAMES = frozenset(
    str.split(
        "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 令狐 司徒 夏侯 长孙 宇文 轩辕 端木 西门 南宫 独孤 "
        "澹台 公冶 宗政 濮阳 太史 申屠 百里 呼延 万俟 闻人 钟离 左丘 第五 拓跋 赫连"
    )
)

# Surname readings of characters whose everyday reading differs (toneless).
SURNAME_READINGS: dict[str, str] = {
    "单": "shan",
    "曾": "zeng",
    "解": "xie",
    "仇": "qiu",
    "朴": "piao",
    "查": "zha",
    "区": "ou",
    "盖": "ge",
    "缪": "miao",
    "乐": "yue",
    "覃": "qin",
    "句": "gou",
    "繁": "po",
    "员": "yun",
    "尉": "yu",
    "翟": "zhai",
    "种": "chong",
    "秘": "bi",
    "召": "shao",
    "莘": "shen",
    "牟": "mu",
    "卜": "bu",
    "隗": "wei",
    "冼": "xian",
    "洗": "xian",
    "薄": "bo",
    "任": "ren",
    "沈": "shen",
    "柏": "bai",
    "长": "chang",
    "重": "chong",
}


def clean_name(value: object) -> str | None:
    """A name as compared: NFKC, without spaces and separators (``买买提·艾力`` → ``买买提艾力``), lower case."""
    if value is None:
        return None
    cleaned = _NAME_NOISE.sub("", unicodedata.normalize("NFKC", str(value))).lower()
    return cleaned or None


def split_name(full: str) -> tuple[str, str]:
    """Split a cleaned Chinese full name into (family name, given name); compound surnames recognized.

    A name that is not Chinese (no CJK first character) is not split: it becomes the given name, so
    it is still compared, and the family name stays empty.
    """
    if not full:
        return "", ""
    if not _is_cjk(full[0]):
        return "", full
    if len(full) >= 3 and full[:2] in COMPOUND_SURNAMES:
        return full[:2], full[2:]
    if len(full) == 1:
        return full, ""
    return full[0], full[1:]


def _is_cjk(char: str) -> bool:
    """True for a CJK unified ideograph (the basic block and extension A)."""
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf"


@functools.lru_cache(maxsize=65536)
def _char_pinyin(char: str) -> str:
    """Toneless pinyin of one character (its most common reading); a non-Chinese character as itself."""
    if not _is_cjk(char):
        return char
    return lazy_pinyin(char, style=Style.NORMAL, errors="default")[0]


def pinyin(text_value: str, *, surname: bool = False) -> str:
    """Toneless pinyin syllables separated by spaces; ``surname`` applies surname readings."""
    if not text_value:
        return ""
    if surname:
        if text_value in COMPOUND_SURNAMES:
            return " ".join(_char_pinyin(c) for c in text_value)
        first = SURNAME_READINGS.get(text_value[0]) or _char_pinyin(text_value[0])
        return " ".join([first, *(_char_pinyin(c) for c in text_value[1:])])
    return " ".join(_char_pinyin(c) for c in text_value)


_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("l", "n"))
_FUZZY_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))


@functools.lru_cache(maxsize=8192)
def _fuzzy_syllable(syllable: str) -> str:
    """One syllable with the commonly merged distinctions folded (模糊音)."""
    for full, folded in _FUZZY_INITIALS:
        if syllable.startswith(full):
            syllable = folded + syllable[len(full) :]
            break
    for full, folded in _FUZZY_FINALS:
        if syllable.endswith(full):
            syllable = syllable[: -len(full)] + folded
            break
    return syllable


def fuzzy_pinyin(pinyin_text: str) -> str:
    """Fuzzy pinyin of space-separated syllables: ``zhang ming`` and ``zan min`` become equal."""
    return " ".join(_fuzzy_syllable(s) for s in pinyin_text.split(" ") if s)


@dataclass(frozen=True)
class NameParts:
    """A normalized person name: family and given name with their comparison forms."""

    family: str | None
    given: str | None
    family_pinyin: str | None
    given_pinyin: str | None
    family_canonical: str | None
    given_canonical: str | None
    given_fuzzy: str | None


def name_parts(full: object = None, family: object = None, given: object = None) -> NameParts:
    """Normalize a person's name from a full name and/or separate family and given names.

    Separate family/given columns win over a full-name column; a full name alone is split with
    :func:`split_name`.
    """
    fam = clean_name(family) or ""
    giv = clean_name(given) or ""
    if not fam and not giv:
        fam, giv = split_name(clean_name(full) or "")
    fam_py, fam_cn = _family_forms(fam)
    giv_py, giv_cn, giv_fz = _given_forms(giv)
    return NameParts(
        family=fam or None,
        given=giv or None,
        family_pinyin=fam_py,
        given_pinyin=giv_py,
        family_canonical=fam_cn,
        given_canonical=giv_cn,
        given_fuzzy=giv_fz,
    )


@functools.lru_cache(maxsize=65536)
def _family_forms(family: str) -> tuple[str | None, str | None]:
    """(pinyin, canonical form) of a family name; a few hundred surnames cover most people."""
    if not family:
        return None, None
    return pinyin(family, surname=True).replace(" ", "") or None, canonical(family) or None


@functools.lru_cache(maxsize=262144)
def _given_forms(given: str) -> tuple[str | None, str | None, str | None]:
    """(pinyin, canonical form, fuzzy pinyin) of a given name; given names repeat a lot too."""
    if not given:
        return None, None, None
    syllables = pinyin(given)
    return (
        syllables.replace(" ", "") or None,
        canonical(given) or None,
        fuzzy_pinyin(syllables).replace(" ", "") or None,
    )


# Legal-form suffixes of enterprise names, longest first, removed before comparison.
_LEGAL_FORMS = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "集团公司",
    "合伙企业",
    "个体工商户",
    "分公司",
    "公司",
)


@dataclass(frozen=True)
class OrgName:
    """A normalized organization name and its comparison forms."""

    name: str | None
    core: str | None
    canonical: str | None
    pinyin: str | None


def org_name(value: object) -> OrgName:
    """Normalize an enterprise or organization name; ``core`` drops the legal-form suffix."""
    name = clean_name(value)
    if not name:
        return OrgName(None, None, None, None)
    core = name
    for suffix in _LEGAL_FORMS:
        if core.endswith(suffix) and len(core) > len(suffix) + 1:
            core = core[: -len(suffix)]
            break
    return OrgName(name, core, canonical(core), pinyin(core).replace(" ", "") or None)


# --- dates, sex, phones, codes -------------------------------------------------------------------

_DATE_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DATE_SEPARATED = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})")


def birth_date(value: object) -> str | None:
    """A date as ``YYYYMMDD`` digits (not validated: a transposed month may read 13); None if unparsable."""
    normalized = text(value)
    if normalized is None:
        return None
    match = _DATE_COMPACT.match(normalized) or _DATE_SEPARATED.search(normalized)
    if not match:
        return None
    year, month, day = match.groups()
    return f"{year}{int(month):02d}{int(day):02d}"


_MALE = frozenset({"男", "男性", "m", "male", "1"})
_FEMALE = frozenset({"女", "女性", "f", "female", "2"})


def sex(value: object) -> str | None:
    """``"M"`` or ``"F"`` from 男/女, M/F or the GB/T 2261.1 codes 1/2; None for anything else."""
    normalized = compact_text(value)
    if normalized in _MALE:
        return "M"
    if normalized in _FEMALE:
        return "F"
    return None


_NON_DIGITS = re.compile(r"\D+")


def phone(value: object) -> str | None:
    """Digits of a phone number without a +86/0086 country prefix; None when fewer than 7 digits."""
    normalized = text(value)
    if normalized is None:
        return None
    digits = _NON_DIGITS.sub("", normalized)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits if len(digits) >= 7 else None


def postcode(value: object) -> str | None:
    """A 6-digit postcode (邮政编码) or None."""
    normalized = text(value)
    if normalized is None:
        return None
    digits = _NON_DIGITS.sub("", normalized)
    return digits if len(digits) == 6 else None


_CITY_SUFFIXES = ("自治州", "地区", "市", "盟")


def city(value: object) -> str | None:
    """A city name without its administrative suffix (济南市 → 济南)."""
    normalized = clean_name(value)
    if not normalized:
        return None
    for suffix in _CITY_SUFFIXES:
        if normalized.endswith(suffix) and len(normalized) > len(suffix) + 1:
            return normalized[: -len(suffix)]
    return normalized


IDENTIFIER_KINDS = ("any", "resident_id", "uscc")


@dataclass(frozen=True)
class Identifier:
    """A normalized identifier: the value, whether its checksum is valid, and what a resident ID encodes."""

    value: str | None
    valid: bool
    birth_date: str | None = None
    sex: str | None = None


def upgrade_resident_id(number: str) -> str:
    """A 15-digit first-generation ID number as 18 digits (century 19 inserted, check character added)."""
    first17 = number[:6] + "19" + number[6:]
    return first17 + validators.id_check_digit(first17)


def identifier_value(value: object, kind: str = "any") -> str | None:
    """An ID number or USCC as compared, without checking it: no spaces or hyphens, upper case, 18 digits."""
    normalized = text(value)
    if normalized is None:
        return None
    number = normalized.replace(" ", "").replace("-", "").replace("_", "").upper()
    if kind != "uscc" and len(number) == 15 and number.isdigit():
        number = upgrade_resident_id(number)
    return number or None


def identifier(value: object, kind: str = "any") -> Identifier:
    """Normalize an ID number or USCC and check it with the kernel validators (``kind`` restricts which)."""
    number = identifier_value(value, kind)
    if number is None:
        return Identifier(None, False)
    if kind != "uscc" and _ID_FORMAT.match(number) and _resident_id_valid(number):
        return Identifier(number, True, birth_date=number[6:14], sex=validators.id_sex(number))
    if kind != "resident_id" and _uscc_checksum_ok(number) and validators.is_valid_uscc(number):
        return Identifier(number, True)
    return Identifier(number, False)


_ID_FORMAT = re.compile(r"^\d{17}[\dX]$")


def _resident_id_valid(number: str) -> bool:
    """The kernel's verdict on a well-formed 18-character ID number, decided part by part.

    :func:`dgov.kernel.validators.validate_resident_id` checks the address code, the birth date
    and the check character independently of one another, and costs tens of microseconds a call.
    Millions of distinct numbers share a few thousand address codes, so the kernel validator judges
    each address code once (on a number that is valid in every other part); the check character is
    computed per number with the kernel's :func:`~dgov.kernel.validators.id_check_digit` (first, as
    it rejects every mistyped number), and the birth date follows the kernel's rule. A test checks
    that the verdict equals ``is_valid_resident_id``.
    """
    return (
        validators.id_check_digit(number[:17]) == number[17]
        and _birth_valid(number[6:14])
        and _address_code_valid(number[:6])
    )


def _with_check(first17: str) -> str:
    """``first17`` completed with its check character."""
    return first17 + validators.id_check_digit(first17)


@functools.lru_cache(maxsize=65536)
def _address_code_valid(code: str) -> bool:
    """The kernel accepts ``code`` as the address code of an ID number."""
    return validators.is_valid_resident_id(_with_check(code + "20000101000"))


def _birth_valid(digits: str) -> bool:
    """The birth-date rule of :func:`~dgov.kernel.validators.validate_resident_id`: a real date from 1900 to today."""
    return _birth_valid_on(digits, _today())


@functools.lru_cache(maxsize=131072)
def _birth_valid_on(digits: str, today: datetime.date) -> bool:
    """:func:`_birth_valid` for a given today (cached per date)."""
    try:
        born = datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return False
    return born.year >= 1900 and born <= today


_today_cache: list = [0.0, None]


def _today() -> datetime.date:
    """Today in the platform's time zone, as the kernel validators see it (refreshed once a minute)."""
    now = time.monotonic()
    if _today_cache[1] is None or now - _today_cache[0] > 60:
        from django.conf import settings
        from django.utils import timezone

        today = timezone.localdate() if settings.configured and settings.USE_TZ else datetime.date.today()
        _today_cache[:] = [now, today]
    return _today_cache[1]


def _uscc_checksum_ok(number: str) -> bool:
    """Cheap pre-check (the kernel's MOD 31 check character) before the full kernel validation."""
    try:
        return len(number) == 18 and validators.uscc_check_digit(number[:17]) == number[17]
    except ValueError:
        return False


# --- addresses -----------------------------------------------------------------------------------


@functools.cache
def _division_names() -> dict[str, tuple[str, ...]]:
    """Every full division name of GB/T 2260 (all periods), indexed by its first two characters, longest first."""
    names = {
        name
        for entry in validators.loc_entries().values()
        for _start, _end, name in entry.periods
        if len(name) >= 2 and name not in {"市辖区", "县", "省直辖县级行政区划"}
    }
    index: dict[str, list[str]] = {}
    for name in names:
        index.setdefault(name[:2], []).append(name)
    return {head: tuple(sorted(group, key=len, reverse=True)) for head, group in index.items()}


def strip_divisions(address: str) -> str:
    """``address`` without its leading province/city/county names (山东省济南市历下区文化东路1号 → 文化东路1号).

    Only full names (with 省/市/区/县 …) are removed: short forms such as 中山 are also the first
    characters of street names (中山路). The address is returned unchanged when nothing would remain.
    """
    index = _division_names()
    rest = address
    while True:
        for name in index.get(rest[:2], ()):
            if len(rest) > len(name) and rest.startswith(name):
                rest = rest[len(name) :]
                break
        else:
            return rest or address


def address_key(value: object) -> str | None:
    """The place an address denotes, for telling real disagreements from formatting.

    The innermost division name that the address starts with (its county, or city) plus the part
    below it, so 山东省济南市历下区文化东路1号, 济南市历下区文化东路1号 and 历下区文化东路1号 are one
    key, while an address in another county or another street is not.
    """
    whole, detail = address(value)
    if whole is None or detail is None:
        return None
    divisions = whole[: len(whole) - len(detail)] if whole.endswith(detail) and whole != detail else ""
    index = _division_names()
    innermost = ""
    rest = divisions
    while rest:
        name = next((n for n in index.get(rest[:2], ()) if rest.startswith(n)), None)
        if name is None:
            break
        innermost, rest = name, rest[len(name) :]
    return f"{innermost}|{detail}"


def address(value: object) -> tuple[str | None, str | None]:
    """(whole address, detail below the county) normalized: NFKC, no spaces or punctuation."""
    normalized = text(value)
    if normalized is None:
        return None, None
    compact = _ADDRESS_NOISE.sub("", normalized).lower()
    if not compact:
        return None, None
    return compact, strip_divisions(compact)
