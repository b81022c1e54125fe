"""Masking rules for ID numbers, phones, names, addresses and USCCs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dgov.kernel.masking import mask_address, mask_id_number, mask_name, mask_phone, mask_uscc

ALL = (mask_address, mask_id_number, mask_name, mask_phone, mask_uscc)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("370102199001011234", "370102********1234"),
        ("37010219900101123X", "370102********123X"),
        (" 370102199001011234 ", "370102********1234"),
        ("370102900101123", "370102*****1123"),  # 15-digit first-generation number
        ("12345", "1***5"),
        ("12", "**"),
        (370102199001011234, "370102********1234"),
    ],
)
def test_mask_id_number(value, expected):
    assert mask_id_number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("13812345678", "138****5678"),
        ("+8613812345678", "+86138****5678"),
        ("+86 13812345678", "+86 138****5678"),
        ("0531-88886666", "0531-****6666"),
        ("010-12345678-801", "010-****5678-801"),
        ("95598123", "955*8123"),
        ("12345", "****5"),
        ("1", "*"),
    ],
)
def test_mask_phone(value, expected):
    assert mask_phone(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("张三", "张*"),
        ("欧阳娜娜", "欧***"),
        ("李", "*"),
        ("阿依古丽·买买提", "阿***·***"),
        ("John Smith", "J*** *****"),
    ],
)
def test_mask_name(value, expected):
    assert mask_name(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("山东省济南市历下区泉城路1号", "山东省济南市历下区****"),
        ("山东省济南市市中区经七路100号", "山东省济南市市中区****"),
        ("山东省济南市历下区文化东路街道青龙街社区12号楼3单元", "山东省济南市历下区****"),
        ("北京市朝阳区建国路88号", "北京市朝阳区****"),
        ("上海市浦东新区世纪大道100号", "上海市浦东新区****"),
        ("新疆维吾尔自治区喀什地区喀什市人民路1号", "新疆维吾尔自治区喀什地区喀什市****"),
        ("内蒙古自治区呼伦贝尔市额尔古纳市拉布大林街", "内蒙古自治区呼伦贝尔市额尔古纳市****"),
        ("山东省济南市泉城路12号", "山东省济南市****"),  # no county: keep what is there
        ("历下区泉城路农贸市场", "历下区****"),
        ("某某省某某市某某区某路1号", "某某省某某市某某区****"),  # unknown names: by suffix
        ("泉城路农贸市场12号", "泉城****"),  # no division: first two characters only
        ("山东省济南市章丘区", "山东省济南市章丘区"),  # nothing below the county to hide
    ],
)
def test_mask_address(value, expected):
    assert mask_address(value) == expected


def test_mask_address_hides_the_length_of_the_street_part():
    assert mask_address("北京市朝阳区建国路88号") == mask_address("北京市朝阳区建国路88号院3号楼2单元1101室")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("91370102MA3C12345X", "91370102********5X"),
        ("12345", "1***5"),
    ],
)
def test_mask_uscc(value, expected):
    assert mask_uscc(value) == expected


@pytest.mark.parametrize("func", ALL)
@pytest.mark.parametrize("value", [None, "", "   "])
def test_blank_values_give_empty_strings(func, value):
    assert func(value) == ""


@pytest.mark.parametrize("func", ALL)
@given(value=st.one_of(st.text(max_size=40), st.integers(), st.none()))
def test_masking_never_raises_and_never_reveals_long_values_whole(func, value):
    masked = func(value)
    assert isinstance(masked, str)
    text = "" if value is None else str(value).strip()
    if len(text) >= 3 and func is not mask_address and any(ch not in "·•・. -" for ch in text[1:]):
        assert "*" in masked
