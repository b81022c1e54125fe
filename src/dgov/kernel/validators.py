"""Validators for Chinese identifiers: resident ID numbers, USCCs and administrative division codes.

* 居民身份证号码 resident ID number, GB 11643-1999: 6-digit address code (GB/T 2260), 8-digit birth
  date, 3-digit sequence (odd for men, even for women), ISO 7064 MOD 11-2 check character (0-9 or X).
* 统一社会信用代码 unified social credit code (USCC), GB 32100-2015: registration authority (1 char),
  organization type (1 char), 6-digit division code of the registering office, 9-character
  organization code (GB 11714: 8 characters and its own MOD 11 check character), MOD 31 check character.
* 行政区划代码 division code: 6 digits (GB/T 2260), 9 digits (township, GB/T 10114) or 12 digits
  (village, the statistical urban-rural code).

Each ``validate_*`` function normalizes its input, returns the normalized value and raises
``django.core.exceptions.ValidationError`` with a Chinese message that names the field and the
reason, and a stable ``code`` that callers and API clients can branch on.

Which address codes exist comes from ``stdnum/cn/loc.dat`` shipped with python-stdnum (the GB/T
2260 history since 1980, abolished codes included), so the validators work without a database.
When a code is not in that file, the divisions loaded into the database are consulted too (they
may come from a newer loc.dat-format file, ``dgov divisions load --file``); that lookup is cached
in-process by :mod:`dgov.kernel.services.divisions`.

Unlike ``stdnum.cn.ric`` we do not require the address code to have been valid in the birth year:
ID numbers were first issued in 1984 with the address code of the place of registration at that
time, so people born before a code was created legitimately carry it.
"""

from __future__ import annotations

import datetime
import functools
import logging
import re
from dataclasses import dataclass
from importlib import resources

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

__all__ = [
    "LocEntry",
    "id_birth_date",
    "id_check_digit",
    "id_region",
    "id_sex",
    "is_valid_resident_id",
    "is_valid_uscc",
    "loc_entries",
    "make_resident_id",
    "make_uscc",
    "org_code_check_digit",
    "USCC_AUTHORITIES",
    "uscc_check_digit",
    "validate_division_code",
    "validate_resident_id",
    "validate_uscc",
]

logger = logging.getLogger(__name__)

# --- GB/T 2260 data from python-stdnum ----------------------------------------------------------

_PERIOD = re.compile(r"^\[(\d{4})?-(\d{4})?\](.*)$")
_LINE = re.compile(r'^(\s*)(\d{2}|\d{4}) (province|county)="(.*)"\s*$')


@dataclass(frozen=True)
class LocEntry:
    """One 6-digit code of loc.dat with its names over time: ``(start_year, end_year, name)`` triples."""

    code: str
    periods: tuple[tuple[int | None, int | None, str], ...]

    @property
    def current_name(self) -> str | None:
        """The name in force today (a period without end year), or None if the code was abolished."""
        names = [name for _start, end, name in self.periods if end is None]
        return names[-1] if names else None

    @property
    def latest_name(self) -> str:
        """The most recent name, in force or not (for messages about abolished codes)."""
        return self.periods[-1][2]


def _parse_periods(value: str) -> tuple[tuple[int | None, int | None, str], ...]:
    """Split ``[1983-1992]郊区,[1993-]任城区`` into validity periods; an unbracketed name has none."""
    periods = []
    for part in value.split(","):
        part = part.strip()
        match = _PERIOD.match(part)
        if match:
            start, end, name = match.groups()
            periods.append((int(start) if start else None, int(end) if end else None, name.strip()))
        elif part:
            periods.append((None, None, part))
    return tuple(periods)


def parse_loc_dat(text: str) -> dict[str, LocEntry]:
    """Parse loc.dat: ``11 province="北京市"`` then indented 4-digit entries ``  0101 county="东城区"``.

    The 2-digit line names the province (code pp0000); its ``0000`` entry, when present, carries the
    validity range and the simplified-character name, and wins.
    """
    entries: dict[str, LocEntry] = {}
    province = ""
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        match = _LINE.match(raw)
        if not match:
            raise ValueError(f"loc.dat: cannot parse line {raw!r}")
        indent, digits, kind, value = match.groups()
        if not indent and len(digits) == 2:
            province = digits
            entries[f"{digits}0000"] = LocEntry(f"{digits}0000", _parse_periods(value))
        elif indent and len(digits) == 4 and province:
            code = province + digits
            entries[code] = LocEntry(code, _parse_periods(value))
        else:
            raise ValueError(f"loc.dat: unexpected line {raw!r}")
    return entries


@functools.cache
def loc_entries() -> dict[str, LocEntry]:
    """All 6-digit codes known to python-stdnum's loc.dat (current and abolished), parsed once."""
    text = (resources.files("stdnum") / "cn" / "loc.dat").read_text(encoding="utf-8")
    return parse_loc_dat(text)


def _in_database(code: str) -> bool:
    """True when ``code`` is a current division in the database; False when unknown or no database."""
    try:
        from dgov.kernel.services.divisions import known_division_codes

        return code in known_division_codes()
    except Exception:  # noqa: BLE001 - no database (tests without db, scripts): loc.dat stays the authority
        logger.debug("division lookup in the database unavailable", exc_info=True)
        return False


def _known_address_code(code: str) -> bool:
    """Any code ever valid in GB/T 2260, or a division the database knows."""
    return code in loc_entries() or _in_database(code)


def _current_division_code(code: str) -> bool:
    """A code in force today according to loc.dat, or a current division in the database."""
    entry = loc_entries().get(code)
    return (entry is not None and entry.current_name is not None) or _in_database(code)


def _today() -> datetime.date:
    """Today's date in the platform's time zone."""
    from django.conf import settings
    from django.utils import timezone

    return timezone.localdate() if settings.configured and settings.USE_TZ else datetime.date.today()


# --- 居民身份证号码 (GB 11643) ------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"  # index: weighted sum mod 11
_ID_FORMAT = re.compile(r"^\d{17}[\dX]$")
ID_FIELD = "居民身份证号码"


def id_check_digit(first17: str) -> str:
    """The MOD 11-2 check character for the first 17 digits of a resident ID number."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _normalize(value: object) -> str:
    """Strip surrounding whitespace and upper-case (a lower-case x is a common typing variant)."""
    return str(value if value is not None else "").strip().upper()


def validate_resident_id(value: str, field: str = ID_FIELD) -> str:
    """Validate a resident ID number and return it normalized (upper-case X); raises ValidationError."""
    number = _normalize(value)
    if len(number) != 18:
        raise ValidationError(
            _("%(field)s：长度应为 18 位（实际 %(length)d 位）") % {"field": field, "length": len(number)},
            code="id_length",
        )
    if not _ID_FORMAT.match(number):
        raise ValidationError(
            _("%(field)s：前 17 位应为数字，第 18 位应为数字或 X") % {"field": field}, code="id_format"
        )
    birth = number[6:14]
    try:
        born = datetime.date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        born = None
    if born is None or born.year < 1900 or born > _today():
        raise ValidationError(
            _("%(field)s：出生日期 %(date)s 无效") % {"field": field, "date": birth}, code="id_birthdate"
        )
    if not _known_address_code(number[:6]):
        raise ValidationError(
            _("%(field)s：地址码 %(code)s 不是有效的行政区划代码") % {"field": field, "code": number[:6]},
            code="id_region",
        )
    expected = id_check_digit(number[:17])
    if number[17] != expected:
        raise ValidationError(
            _("%(field)s：校验码错误（应为 %(expected)s）") % {"field": field, "expected": expected},
            code="id_checksum",
        )
    return number


def is_valid_resident_id(value: str) -> bool:
    """True when ``value`` passes :func:`validate_resident_id`."""
    try:
        validate_resident_id(value)
    except ValidationError:
        return False
    return True


def id_region(value: str) -> str:
    """The 6-digit address code (place of first registration) of a resident ID number."""
    number = _normalize(value)
    if len(number) != 18 or not number[:6].isdigit():
        raise ValueError("not an 18-character resident ID number")
    return number[:6]


def id_birth_date(value: str) -> datetime.date:
    """The birth date encoded in a resident ID number (ValueError if it is not a date)."""
    number = _normalize(value)
    if len(number) != 18 or not number[6:14].isdigit():
        raise ValueError("not an 18-character resident ID number")
    return datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def id_sex(value: str) -> str:
    """``"M"`` or ``"F"``: the 17th digit (end of the sequence code) is odd for men, even for women."""
    number = _normalize(value)
    if len(number) != 18 or not number[16].isdigit():
        raise ValueError("not an 18-character resident ID number")
    return "M" if int(number[16]) % 2 else "F"


def make_resident_id(region: str, birth_date: datetime.date, seq: int) -> str:
    """Build a resident ID number with its check character (``seq`` 0–999; odd = male, even = female)."""
    if len(region) != 6 or not region.isdigit():
        raise ValueError("region must be a 6-digit division code")
    if not 0 <= seq <= 999:
        raise ValueError("seq must be between 0 and 999")
    first17 = f"{region}{birth_date:%Y%m%d}{seq:03d}"
    return first17 + id_check_digit(first17)


# --- 统一社会信用代码 (GB 32100) and 组织机构代码 (GB 11714) --------------------------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, Z, S, V
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
USCC_FIELD = "统一社会信用代码"

# Registration authorities (登记管理部门) and the organization types (机构类别) each may assign,
# from the code table of GB 32100-2015.
USCC_AUTHORITIES: dict[str, tuple[str, dict[str, str]]] = {
    "1": ("机构编制", {"1": "机关", "2": "事业单位", "3": "中央编办直接管理机构编制的群众团体", "9": "其他"}),
    "2": ("外交", {"1": "外国常驻新闻机构", "9": "其他"}),
    "3": (
        "司法行政",
        {
            "1": "律师执业机构",
            "2": "公证处",
            "3": "基层法律服务所",
            "4": "司法鉴定机构",
            "5": "仲裁委员会",
            "9": "其他",
        },
    ),
    "4": ("文化", {"1": "外国在华文化中心", "9": "其他"}),
    "5": ("民政", {"1": "社会团体", "2": "民办非企业单位", "3": "基金会", "9": "其他"}),
    "6": (
        "旅游",
        {"1": "外国旅游部门常驻代表机构", "2": "港澳台地区旅游部门常驻内地（大陆）代表机构", "9": "其他"},
    ),
    "7": ("宗教", {"1": "宗教活动场所", "2": "宗教院校", "9": "其他"}),
    "8": ("工会", {"1": "基层工会", "9": "其他"}),
    "9": ("工商", {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"}),
    "A": ("中央军委改革和编制办公室", {"1": "军队事业单位", "9": "其他"}),
    "N": ("农业", {"1": "组级集体经济组织", "2": "村级集体经济组织", "3": "乡镇级集体经济组织", "9": "其他"}),
    "Y": ("其他", {"1": "其他"}),
}


def _org_char_value(char: str) -> int:
    """GB 11714 character value: digits as themselves, letters A=10 … Z=35."""
    if char.isdigit():
        return int(char)
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    raise ValueError(f"invalid organization code character {char!r}")


def org_code_check_digit(body: str) -> str:
    """The GB 11714 check character (0-9 or X) for an 8-character organization code body."""
    if len(body) != 8:
        raise ValueError("organization code body must have 8 characters")
    remainder = 11 - sum(_org_char_value(c) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True)) % 11
    return {10: "X", 11: "0"}.get(remainder, str(remainder))


def uscc_check_digit(first17: str) -> str:
    """The GB 32100 MOD 31 check character for the first 17 characters of a USCC."""
    if len(first17) != 17 or any(c not in _USCC_VALUE for c in first17):
        raise ValueError("need 17 characters of the USCC alphabet")
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def make_uscc(
    authority: str, org_type: str, region: str, org_body: str | None = None, *, serial: int | None = None
) -> str:
    """Build a valid USCC from its parts, computing the organization-code and overall check characters.

    ``authority`` and ``org_type`` are the first two characters (``"9", "1"`` an enterprise,
    ``"1", "1"`` a government organ), ``region`` the registering office's 6-digit division code and
    ``org_body`` the 8-character organization code without its check character. A generator that
    must not collide passes ``serial`` (0–999999): it replaces the last six body characters, so
    codes with the same region and different serials always differ (``org_body`` may then be omitted).
    """
    if len(region) != 6 or not region.isdigit():
        raise ValueError("region must be a 6-digit division code")
    if org_type not in USCC_AUTHORITIES.get(authority, ("", {}))[1]:
        raise ValueError(f"organization type {org_type!r} is not defined for authority {authority!r}")
    body = (org_body or "00000000").upper()
    if serial is not None:
        if not 0 <= serial <= 999_999:
            raise ValueError("serial must be between 0 and 999999")
        body = f"{body[:2]}{serial:06d}"
    if len(body) != 8 or any(c not in _USCC_VALUE for c in body):
        raise ValueError("org_body must be 8 characters of the USCC alphabet (no I, O, Z, S, V)")
    first17 = f"{authority}{org_type}{region}{body}{org_code_check_digit(body)}"
    return validate_uscc(first17 + uscc_check_digit(first17))


def validate_uscc(value: str, field: str = USCC_FIELD) -> str:
    """Validate a unified social credit code and return it normalized; raises ValidationError.

    The registering office's region (characters 3–8) is checked down to the province only: offices
    of development zones register with codes that are not in GB/T 2260, and ``10`` is national level.
    """
    code = _normalize(value)
    if len(code) != 18:
        raise ValidationError(
            _("%(field)s：长度应为 18 位（实际 %(length)d 位）") % {"field": field, "length": len(code)},
            code="uscc_length",
        )
    for position, char in enumerate(code, start=1):
        if char not in _USCC_VALUE:
            raise ValidationError(
                _(
                    "%(field)s：第 %(position)d 位字符“%(char)s”无效"
                    "（只允许数字和除 I、O、Z、S、V 以外的大写字母）"
                )
                % {"field": field, "position": position, "char": char},
                code="uscc_charset",
            )
    authority = USCC_AUTHORITIES.get(code[0])
    if authority is None:
        raise ValidationError(
            _("%(field)s：第 1 位登记管理部门代码“%(char)s”无效") % {"field": field, "char": code[0]},
            code="uscc_authority",
        )
    if code[1] not in authority[1]:
        raise ValidationError(
            _("%(field)s：第 2 位机构类别代码“%(char)s”不属于登记管理部门“%(authority)s”")
            % {"field": field, "char": code[1], "authority": authority[0]},
            code="uscc_org_type",
        )
    region = code[2:8]
    if not region.isdigit() or not (region[:2] == "10" or f"{region[:2]}0000" in loc_entries()):
        raise ValidationError(
            _("%(field)s：第 3–8 位登记管理机关行政区划码 %(region)s 无效")
            % {"field": field, "region": region},
            code="uscc_region",
        )
    expected_org = org_code_check_digit(code[8:16])
    if code[16] != expected_org:
        raise ValidationError(
            _("%(field)s：第 9–17 位组织机构代码校验错误（第 17 位应为 %(expected)s）")
            % {"field": field, "expected": expected_org},
            code="uscc_org_checksum",
        )
    expected = uscc_check_digit(code[:17])
    if code[17] != expected:
        raise ValidationError(
            _("%(field)s：第 18 位校验码错误（应为 %(expected)s）") % {"field": field, "expected": expected},
            code="uscc_checksum",
        )
    return code


def is_valid_uscc(value: str) -> bool:
    """True when ``value`` passes :func:`validate_uscc`."""
    try:
        validate_uscc(value)
    except ValidationError:
        return False
    return True


# --- 行政区划代码 -------------------------------------------------------------------------------

DIVISION_FIELD = "行政区划代码"
_DIVISION_FORMAT = re.compile(r"^\d{6}(?:\d{3}){0,2}$")


def validate_division_code(value: str, field: str = DIVISION_FIELD) -> str:
    """Validate a 6-, 9- or 12-digit division code and return it; raises ValidationError.

    The 6-digit county part must be a division in force (GB/T 2260 per loc.dat, or the database);
    9- and 12-digit codes must not have an all-zero township or village segment. Whether a given
    township or village exists is checked where they are stored (only the demo province has them).
    """
    code = _normalize(value)
    if not _DIVISION_FORMAT.match(code):
        raise ValidationError(
            _("%(field)s：应为 6、9 或 12 位数字（实际为“%(value)s”）") % {"field": field, "value": code},
            code="division_format",
        )
    if (
        code[:6] == "000000"
        or (len(code) >= 9 and code[6:9] == "000")
        or (len(code) == 12 and code[9:] == "000")
    ):
        raise ValidationError(
            _("%(field)s：%(code)s 含有全零的层级段") % {"field": field, "code": code},
            code="division_segment",
        )
    if not _current_division_code(code[:6]):
        entry = loc_entries().get(code[:6])
        if entry is not None:
            raise ValidationError(
                _("%(field)s：%(code)s（%(name)s）已撤销")
                % {"field": field, "code": code[:6], "name": entry.latest_name},
                code="division_abolished",
            )
        raise ValidationError(
            _("%(field)s：%(code)s 不存在") % {"field": field, "code": code[:6]}, code="division_unknown"
        )
    return code
