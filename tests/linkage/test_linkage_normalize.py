"""Chinese-aware normalization (dgov.linkage.normalize)."""

import datetime
import random

import pytest

from dgov.kernel import validators
from dgov.linkage import normalize as n


def test_full_width_and_spaces_are_normalized():
    assert n.text("１２３ＡＢＣ　张三") == "123ABC 张三"
    assert n.clean_name("王　小明") == "王小明"
    assert n.clean_name("买买提·艾力") == "买买提艾力"
    assert n.text("   ") is None


def test_names_split_with_compound_surnames():
    assert n.split_name("欧阳修") == ("欧阳", "修")
    assert n.split_name("王小明") == ("王", "小明")
    assert n.split_name("john") == ("", "john")
    parts = n.name_parts(family="单", given="雄信")
    assert parts.family_pinyin == "shan"  # the surname reading, not dan
    assert n.name_parts("王小明") == n.name_parts(family="王", given="小明")


def test_homophones_share_pinyin_and_fuzzy_pinyin_folds_dialect_pairs():
    assert n.name_parts("张小明").given_pinyin == n.name_parts("张晓鸣").given_pinyin == "xiaoming"
    assert n.fuzzy_pinyin("zhang ming") == n.fuzzy_pinyin("zan min")
    assert n.fuzzy_pinyin("liu") == n.fuzzy_pinyin("niu")


def test_lookalike_and_traditional_characters_share_a_canonical_form():
    assert n.canonical("晴") == n.canonical("睛")
    assert n.canonical("侯") == n.canonical("候")
    assert n.canonical("張") == "张"
    assert n.canonical("楊") == n.canonical("扬") == "杨"
    # Every character belongs to one group at most.
    seen = [c for group in n.LOOKALIKE_GROUPS for c in group]
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    "raw",
    ["1990-01-02", "1990/1/2", "1990年1月2日", "19900102", "１９９０．０１．０２", "1990-01-02 00:00:00"],
)
def test_dates_in_department_formats(raw):
    assert n.birth_date(raw) == "19900102"


def test_dates_keep_transposed_digits_and_reject_garbage():
    assert n.birth_date("19901302") == "19901302"
    assert n.birth_date("unknown") is None


def test_phones_sex_postcodes_cities():
    assert n.phone("+86 138-0013-8000") == "13800138000"
    assert n.phone("0086 13800138000") == "13800138000"
    assert n.phone("0531-88888888") == "053188888888"
    assert n.phone("123") is None
    assert [n.sex(v) for v in ("男", "女", "1", "2", "M", "f", "未知", "")] == [
        "M",
        "F",
        "M",
        "F",
        "M",
        "F",
        None,
        None,
    ]
    assert n.postcode("250 000") == "250000"
    assert n.postcode("2500") is None
    assert n.city("济南市") == "济南"


def test_identifiers_are_checked_with_the_kernel():
    number = validators.make_resident_id("370102", datetime.date(1990, 1, 2), 123)
    parsed = n.identifier(number)
    assert parsed.valid and parsed.birth_date == "19900102" and parsed.sex == "M"
    assert n.identifier(number.lower()).valid
    assert n.identifier(" ".join(number)).value == number
    assert not n.identifier(number[:-1] + ("0" if number[-1] != "0" else "1")).valid
    full_width = number.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    assert n.identifier(full_width).value == number


def test_first_generation_ids_are_upgraded_to_18_digits():
    number = validators.make_resident_id("370102", datetime.date(1965, 3, 4), 456)
    old = number[:6] + number[8:17]
    assert n.identifier(old) == n.identifier(number)


def test_id_validity_agrees_with_the_kernel_validator():
    rng = random.Random(11)
    base = [
        validators.make_resident_id(code, datetime.date(1950, 1, 1) + datetime.timedelta(days=rng.randrange(25000)), i)
        for i, code in enumerate(rng.sample(sorted(c for c in validators.loc_entries() if c[4:] != "00"), 200))
    ]
    for number in base:
        mutated = list(number)
        position = rng.randrange(18)
        mutated[position] = rng.choice("0123456789X")
        candidates = ["".join(mutated), number[:6] + "2099" + number[10:], "999999" + number[6:], number]
        for candidate in candidates:
            assert n.identifier(candidate, "resident_id").valid == validators.is_valid_resident_id(candidate)


def test_uscc_kind():
    code = validators.make_uscc("9", "1", "370102", serial=42)
    assert n.identifier(code).valid
    assert n.identifier(code, "uscc").valid
    assert not n.identifier(code, "resident_id").valid


def test_addresses_lose_their_division_prefix_only():
    assert n.address("山东省济南市历下区 文化东路１号") == ("山东省济南市历下区文化东路1号", "文化东路1号")
    assert n.address("济南市历下区文化东路1号")[1] == "文化东路1号"
    assert n.address("中山路1号")[1] == "中山路1号"  # 中山 alone is not stripped
    assert n.address("历下区")[1] == "历下区"  # nothing would remain
