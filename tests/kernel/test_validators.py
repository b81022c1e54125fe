"""Validators for resident ID numbers, USCCs and division codes (dgov.kernel.validators)."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from dgov.kernel import validators as v

# Current and abolished county-level codes from loc.dat, for generated ID numbers.
COUNTY_CODES = sorted(code for code in v.loc_entries() if code[4:] != "00")


def _error(func, value, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        func(value, **kwargs)
    return info.value


def _with_check(first17: str) -> str:
    return first17 + v.id_check_digit(first17)


# --- resident ID numbers ---------------------------------------------------------------------------


def test_known_valid_ids():
    assert v.validate_resident_id("11010519491231002X") == "11010519491231002X"
    assert v.validate_resident_id(" 11010519491231002x ") == "11010519491231002X"  # normalized
    assert v.validate_resident_id("360426199101010071") == "360426199101010071"


def test_check_digit_agrees_with_stdnum():
    for first17 in ("11010519491231002", "37010219900307123", "44030619851111001"):
        assert v.id_check_digit(first17) == ric.calc_check_digit(first17 + "0")


def test_wrong_check_digit_names_the_expected_one():
    error = _error(v.validate_resident_id, "110105194912310021")
    assert error.code == "id_checksum"
    assert error.messages == ["居民身份证号码：校验码错误（应为 X）"]


def test_invalid_birth_date():
    error = _error(v.validate_resident_id, _with_check("37010219901345123"))
    assert error.code == "id_birthdate"
    assert error.messages == ["居民身份证号码：出生日期 19901345 无效"]


def test_birth_date_in_the_future_or_before_1900():
    future = datetime.date.today() + datetime.timedelta(days=2)
    assert _error(v.validate_resident_id, v.make_resident_id("370102", future, 1)).code == "id_birthdate"
    assert _error(v.validate_resident_id, _with_check("37010218991231123")).code == "id_birthdate"
    assert v.validate_resident_id(_with_check("37010219000101123"))


def test_unknown_region():
    error = _error(v.validate_resident_id, _with_check("37019919900307123"))
    assert error.code == "id_region"
    assert "370199" in error.messages[0]


def test_abolished_region_still_valid_for_ids():
    # 110103 崇文区 was merged into 东城区 in 2010; people registered there keep their numbers.
    assert v.validate_resident_id(v.make_resident_id("110103", datetime.date(1975, 5, 4), 12))


def test_length_and_format():
    assert _error(v.validate_resident_id, "1101051949123100").code == "id_length"
    assert _error(v.validate_resident_id, "11010519491231A02X").code == "id_format"
    assert _error(v.validate_resident_id, "").code == "id_length"


def test_field_name_in_message():
    error = _error(v.validate_resident_id, "123", field="法定代表人身份证号码")
    assert error.messages[0].startswith("法定代表人身份证号码：")


def test_validators_work_without_database():
    # No django_db mark: the region check must not need the database for known codes, and an
    # unknown code is refused rather than crashing on the blocked database access.
    assert v.validate_resident_id("11010519491231002X")
    assert _error(v.validate_resident_id, _with_check("99999919900307123")).code == "id_region"


def test_helpers():
    number = v.make_resident_id("370102", datetime.date(1990, 3, 7), 123)
    assert number == "370102199003071238"
    assert ric.is_valid(number)
    assert v.id_region(number) == "370102"
    assert v.id_birth_date(number) == datetime.date(1990, 3, 7)
    assert v.id_sex(number) == "M"  # 17th digit 3 is odd
    assert v.id_sex("11010519491231002X") == "F"  # 2 is even
    assert v.id_sex(v.make_resident_id("370102", datetime.date(1990, 3, 7), 7)) == "M"
    with pytest.raises(ValueError):
        v.make_resident_id("3701", datetime.date(1990, 3, 7), 1)
    with pytest.raises(ValueError):
        v.make_resident_id("370102", datetime.date(1990, 3, 7), 1000)
    with pytest.raises(ValueError):
        v.id_birth_date("short")


valid_ids = st.builds(
    v.make_resident_id,
    st.sampled_from(COUNTY_CODES),
    st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date.today()),
    st.integers(0, 999),
)


@settings(max_examples=300, deadline=None)
@given(valid_ids)
def test_generated_ids_validate(number):
    assert v.validate_resident_id(number) == number
    assert v.id_check_digit(number[:17]) == ric.calc_check_digit(number)


@settings(max_examples=300, deadline=None)
@given(valid_ids, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_character_change_is_refused(number, position, char):
    if number[position] == char:
        char = "0" if char == "X" else str((int(char) + 1) % 10)
    changed = number[:position] + char + number[position + 1 :]
    assert changed != number
    with pytest.raises(ValidationError):
        v.validate_resident_id(changed)


# --- USCC --------------------------------------------------------------------------------------------


def test_known_valid_uscc():
    assert v.validate_uscc("91110000600037341L") == "91110000600037341L"
    assert v.validate_uscc("91110000600037341l ") == "91110000600037341L"


def test_uscc_check_digit_agrees_with_stdnum():
    for first17 in ("91110000600037341", "11370000004312345", "52370102MJD123456"):
        assert v.uscc_check_digit(first17) == uscc.calc_check_digit(first17)


def test_uscc_messages():
    error = _error(v.validate_uscc, "91110000600037341M")
    assert error.code == "uscc_checksum"
    assert error.messages == ["统一社会信用代码：第 18 位校验码错误（应为 L）"]
    assert _error(v.validate_uscc, "9111000060003734").code == "uscc_length"
    error = _error(v.validate_uscc, "91110000I00037341L")
    assert error.code == "uscc_charset"
    assert "第 9 位" in error.messages[0]
    assert _error(v.validate_uscc, "B1110000600037341L").code == "uscc_authority"
    error = _error(v.validate_uscc, "94110000600037341L")
    assert error.code == "uscc_org_type"
    assert "工商" in error.messages[0]
    assert _error(v.validate_uscc, "9199000060003734XL").code == "uscc_region"
    assert _error(v.validate_uscc, "911100006000373420").code == "uscc_org_checksum"
    assert _error(v.validate_uscc, "x", field="登记机关代码").messages[0].startswith("登记机关代码：")


def test_national_level_region_is_accepted():
    code = v.make_uscc("1", "1", "100000", "00001312")
    assert v.validate_uscc(code) == code


def test_org_code_check_digit():
    # GB 11714 worked example style: weights 3 7 9 10 5 8 4 2, 11 - sum mod 11, 10 → X, 11 → 0.
    assert v.org_code_check_digit("60003734") == "1"
    assert v.org_code_check_digit("D2143569") in "0123456789X"
    with pytest.raises(ValueError):
        v.org_code_check_digit("123")


def test_make_uscc_with_serial_is_unique_and_valid():
    codes = {v.make_uscc("9", "1", "370102", "AB000000", serial=i) for i in range(200)}
    assert len(codes) == 200
    assert all(v.is_valid_uscc(c) and uscc.is_valid(c) for c in codes)
    with pytest.raises(ValueError):
        v.make_uscc("9", "4", "370102", "00000001")  # 4 is no organization type of 工商
    with pytest.raises(ValueError):
        v.make_uscc("9", "1", "370102", "0000000O")  # O is not in the alphabet


valid_usccs = st.builds(
    lambda authority_type, region, body: v.make_uscc(*authority_type, region, body),
    st.sampled_from([(a, t) for a, (_n, types) in v.USCC_AUTHORITIES.items() for t in types]),
    st.sampled_from([c for c in v.loc_entries() if c[2:] == "0000"]),
    st.text(alphabet=v.USCC_ALPHABET, min_size=8, max_size=8),
)


@settings(max_examples=300, deadline=None)
@given(valid_usccs, st.integers(0, 17), st.sampled_from(v.USCC_ALPHABET))
def test_usccs_validate_and_single_changes_are_refused(code, position, char):
    assert v.validate_uscc(code) == code
    if code[position] == char:
        char = v.USCC_ALPHABET[(v.USCC_ALPHABET.index(char) + 1) % len(v.USCC_ALPHABET)]
    with pytest.raises(ValidationError):
        v.validate_uscc(code[:position] + char + code[position + 1 :])


# --- division codes ----------------------------------------------------------------------------------


def test_division_codes():
    assert v.validate_division_code("370102") == "370102"
    assert v.validate_division_code("370102001") == "370102001"
    assert v.validate_division_code("370102001200") == "370102001200"
    error = _error(v.validate_division_code, "370199")
    assert error.code == "division_unknown"
    assert error.messages == ["行政区划代码：370199 不存在"]
    assert _error(v.validate_division_code, "3701").code == "division_format"
    assert _error(v.validate_division_code, "3701020011").code == "division_format"
    assert _error(v.validate_division_code, "370102000").code == "division_segment"
    assert _error(v.validate_division_code, "370102001000").code == "division_segment"
    error = _error(v.validate_division_code, "110103")
    assert error.code == "division_abolished"
    assert "崇文区" in error.messages[0]


@pytest.mark.django_db
def test_division_code_known_only_to_the_database():
    from dgov.kernel.models import Division
    from dgov.kernel.services.divisions import invalidate_division_cache

    invalidate_division_cache()
    assert _error(v.validate_division_code, "379901").code == "division_unknown"
    province = Division.objects.create(code="370000", name="山东省", level=1, full_name="山东省")
    Division.objects.create(code="379901", name="新区", level=3, parent=province, full_name="山东省新区")
    invalidate_division_cache()
    try:
        assert v.validate_division_code("379901") == "379901"
        assert v.validate_resident_id(v.make_resident_id("379901", datetime.date(2001, 1, 1), 5))
    finally:
        invalidate_division_cache()


def test_loc_parser_reads_periods_and_renames():
    entries = v.parse_loc_dat(
        "# comment\n"
        '37 province="山东省"\n'
        '  0000 county="山东省"\n'
        '  0811 county="[1983-1992]郊区,[1993-]任城区"\n'
        '  0103 county="[-2010]崇文区"\n'
        '81 province="香港特別行政區"\n'
        '  0000 county="[1997-]香港特别行政区"\n'
    )
    assert entries["370811"].current_name == "任城区"
    assert entries["370811"].periods[0] == (1983, 1992, "郊区")
    assert entries["370103"].current_name is None
    assert entries["370103"].latest_name == "崇文区"
    assert entries["810000"].current_name == "香港特别行政区"
    with pytest.raises(ValueError):
        v.parse_loc_dat("garbage line\n")
