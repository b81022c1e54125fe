"""Field definitions, schema evolution, value cleaning and masking (dgov.registry.schema)."""

import datetime
import decimal

import pytest

from dgov.kernel.validators import make_resident_id, make_uscc
from dgov.registry.schema import (
    FieldDef,
    RecordValidationError,
    SchemaError,
    check_evolution,
    clean_value,
    clean_values,
    fields_to_dicts,
    key_purpose,
    mask_value,
    parse_fields,
)

PID = make_resident_id("370102", datetime.date(1990, 1, 1), 11)


@pytest.fixture(autouse=True)
def chinese_messages():
    """Assert on the Chinese messages whatever language an earlier test left active."""
    from django.utils import translation

    with translation.override("zh-hans"):
        yield


def f(**kwargs):
    """A field definition dict with a label."""
    return {"label": kwargs.get("name", "x"), **kwargs}


# --- parse_fields ---------------------------------------------------------------------------------------


def test_parse_fields_builds_fielddefs_with_defaults():
    fields = parse_fields([f(name="name"), f(name="age", type="integer", min=0, max=150)])
    assert fields[0] == FieldDef(name="name", label="name")
    assert fields[1].min == 0 and fields[1].max == 150
    assert fields[0].sensitivity == "public" and not fields[0].required


def test_identifier_is_required_unique_and_lookup():
    fields = parse_fields([f(name="code"), f(name="other")], identifier="code")
    assert (fields[0].required, fields[0].unique, fields[0].lookup) == (True, True, True)
    assert not fields[1].unique


def test_identifier_must_be_defined():
    with pytest.raises(SchemaError, match="标识字段"):
        parse_fields([f(name="a")], identifier="b")


@pytest.mark.parametrize(
    ("definition", "reason"),
    [
        ({"name": "Bad Name", "label": "x"}, "名称"),
        ({"name": "a", "label": ""}, "label"),
        ({"name": "a", "label": "x", "type": "blob"}, "未知的类型"),
        ({"name": "a", "label": "x", "colour": "red"}, "未知的定义项"),
        ({"name": "a", "label": "x", "type": "enum"}, "choices"),
        ({"name": "a", "label": "x", "choices": ["1"]}, "只有枚举"),
        ({"name": "a", "label": "x", "type": "enum", "choices": ["1", "1"]}, "重复"),
        ({"name": "a", "label": "x", "type": "reference"}, "ref"),
        ({"name": "a", "label": "x", "type": "resident_id"}, "personal"),
        ({"name": "a", "label": "x", "sensitivity": "secret"}, "敏感级别"),
        ({"name": "a", "label": "x", "pattern": "("}, "正则"),
        ({"name": "a", "label": "x", "type": "integer", "min": 5, "max": 1}, "min 大于 max"),
        ({"name": "a", "label": "x", "type": "integer", "min": 1.5}, "整数"),
        ({"name": "a", "label": "x", "min": 1}, "只有整数"),
        ({"name": "a", "label": "x", "type": "integer", "max_length": 3}, "max_length"),
        ({"name": "a", "label": "x", "max_length": 0}, "正整数"),
        ({"name": "a", "label": "x", "required": "yes"}, "true 或 false"),
        ({"name": "a", "label": "x", "mask": "rot13"}, "脱敏规则"),
        ({"name": "a", "label": "x", "type": "json", "unique": True}, "唯一键"),
        ({"name": "a", "label": "x", "authority": "GA||MZ"}, "权威来源"),
    ],
)
def test_bad_definitions_are_refused_naming_field_and_reason(definition, reason):
    with pytest.raises(SchemaError) as excinfo:
        parse_fields([definition])
    message = excinfo.value.messages[0]
    assert reason in message
    assert "字段" in message


def test_duplicate_and_empty_field_lists_are_refused():
    with pytest.raises(SchemaError, match="重复"):
        parse_fields([f(name="a"), f(name="a")])
    with pytest.raises(SchemaError, match="至少"):
        parse_fields([])
    with pytest.raises(SchemaError):
        parse_fields({"name": "a"})


def test_authorities_are_split_and_stripped():
    (field,) = parse_fields([f(name="a", authority=" WJ | GA ")])
    assert field.authority == "WJ|GA"
    assert field.authorities == ("WJ", "GA")


def test_round_trip_through_dicts():
    fields = parse_fields(
        [f(name="s", type="enum", choices=["a", "b"], authority="GA"), f(name="n", type="decimal", min="0.5")]
    )
    assert parse_fields(fields_to_dicts(fields)) == fields
    assert fields_to_dicts(fields)[0]["choices"] == ["a", "b"]


# --- evolution ------------------------------------------------------------------------------------------


def test_adding_fields_is_allowed():
    old = parse_fields([f(name="a")])
    check_evolution(old, parse_fields([f(name="a", label="新名称"), f(name="b")]))


def test_removing_a_field_is_refused():
    with pytest.raises(SchemaError, match="删除"):
        check_evolution(parse_fields([f(name="a"), f(name="b")]), parse_fields([f(name="a")]))


def test_retyping_a_field_is_refused():
    with pytest.raises(SchemaError, match="类型"):
        check_evolution(parse_fields([f(name="a")]), parse_fields([f(name="a", type="integer")]))


def test_moving_a_field_in_or_out_of_the_sealed_values_is_refused():
    with pytest.raises(SchemaError, match="个人信息"):
        check_evolution(parse_fields([f(name="a")]), parse_fields([f(name="a", sensitivity="personal")]))


# --- cleaning -------------------------------------------------------------------------------------------

ALL = parse_fields(
    [
        f(name="s", max_length=5),
        f(name="code", pattern=r"[A-Z]{2}\d+"),
        f(name="n", type="integer", min=0, max=200),
        f(name="d", type="decimal", min="0", max="1000000"),
        f(name="b", type="boolean"),
        f(name="day", type="date"),
        f(name="at", type="datetime"),
        f(name="e", type="enum", choices=["男", "女"]),
        f(name="pid", label="居民身份证号码", type="resident_id", sensitivity="personal"),
        f(name="uscc", type="uscc"),
        f(name="div", type="division_code"),
        f(name="tel", type="phone"),
        f(name="mail", type="email"),
        f(name="geo", type="geojson"),
        f(name="ref", type="reference", ref="x.y"),
        f(name="extra", type="json"),
        f(name="req", required=True),
    ]
)


def test_clean_values_coerces_strings_like_csv_cells():
    uscc = make_uscc("9", "1", "370102", serial=42)
    out = clean_values(
        ALL,
        {
            "s": " abc ",
            "code": "AB12",
            "n": "12",
            "d": "1,234.50",
            "b": "是",
            "day": "20200102",
            "at": "2020-01-02 08:30",
            "e": "女",
            "pid": PID.lower() if PID.endswith("X") else PID,
            "uscc": uscc,
            "div": "370102",
            "tel": "138 1234 5678",
            "mail": "a@example.cn",
            "geo": '{"type": "Point", "coordinates": [117.0, 36.6]}',
            "ref": "12345678-1234-5678-1234-567812345678",
            "extra": '{"k": [1, 2]}',
            "req": "x",
        },
    )
    assert out["s"] == "abc"
    assert out["n"] == 12 and isinstance(out["n"], int)
    assert out["d"] == "1234.5"
    assert out["b"] is True
    assert out["day"] == "2020-01-02"
    assert out["at"].startswith("2020-01-02T08:30:00+08:00")
    assert out["pid"] == PID
    assert out["tel"] == "13812345678"
    assert out["geo"] == {"type": "Point", "coordinates": [117.0, 36.6]}
    assert out["extra"] == {"k": [1, 2]}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2020-01-02", "2020-01-02"),
        ("2020/1/2", "2020-01-02"),
        ("20200102", "2020-01-02"),
        ("2020.01.02", "2020-01-02"),
    ],
)
def test_date_formats(raw, expected):
    assert clean_value(ALL[5], raw) == expected
    assert clean_value(ALL[5], datetime.date(2020, 1, 2)) == "2020-01-02"


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("1", True), ("否", False), ("FALSE", False), (0, False)]
)
def test_booleans(raw, expected):
    assert clean_value(ALL[4], raw) is expected


def test_decimals_are_canonical_strings():
    assert clean_value(ALL[3], decimal.Decimal("1E+2")) == "100"
    assert clean_value(ALL[3], 2.50) == "2.5"
    assert clean_value(ALL[3], "0.000") == "0"


@pytest.mark.parametrize(
    ("name", "raw", "fragment"),
    [
        ("s", "abcdef", "长度不能超过 5"),
        ("code", "ab12", "格式"),
        ("n", "12.5", "不是整数"),
        ("n", "-1", "不能小于 0"),
        ("n", 201, "不能大于 200"),
        ("n", True, "整数"),
        ("d", "abc", "不是数值"),
        ("d", "NaN", "不是数值"),
        ("b", "maybe", "是/否"),
        ("day", "2020-02-30", "不是有效日期"),
        ("at", "yesterday", "不是有效时间"),
        ("e", "未知", "不是可选值"),
        ("pid", "370102199001011235", "居民身份证号码"),
        ("uscc", "91370102MA3C12345Y", "校验"),
        ("div", "999999", "不存在"),
        ("tel", "12345", "电话号码"),
        ("mail", "not-an-email", "电子邮箱"),
        ("geo", {"type": "Circle"}, "GeoJSON 类型"),
        ("geo", {"type": "Point", "coordinates": ["a", 1]}, "coordinates"),
        ("geo", {"type": "FeatureCollection"}, "features"),
        ("geo", "[1,2]", "GeoJSON 对象"),
        ("ref", "not-a-uuid", "记录标识"),
        ("extra", "{bad json", "JSON"),
    ],
)
def test_bad_values_are_reported_per_field_naming_the_field(name, raw, fragment):
    with pytest.raises(RecordValidationError) as excinfo:
        clean_values(ALL, {name: raw, "req": "x"})
    assert list(excinfo.value.errors) == [name]
    message = excinfo.value.errors[name][0]
    assert fragment in message
    label = next(field.label for field in ALL if field.name == name)
    assert label in message


def test_every_error_is_collected_and_required_fields_checked():
    with pytest.raises(RecordValidationError) as excinfo:
        clean_values(ALL, {"n": "x", "e": "y", "nope": 1})
    assert set(excinfo.value.errors) == {"n", "e", "nope", "req"}
    assert "必填" in excinfo.value.errors["req"][0]
    assert "未知字段" in excinfo.value.errors["nope"][0]


def test_empty_values_are_dropped_on_create_and_clear_on_update():
    assert clean_values(ALL, {"req": "x", "s": "  ", "n": None}) == {"req": "x"}
    assert clean_values(ALL, {"s": "", "n": None}, partial=True) == {"s": None, "n": None}
    with pytest.raises(RecordValidationError, match="不能清空"):
        clean_values(ALL, {"req": ""}, partial=True)


def test_geojson_feature_collection_is_accepted():
    value = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "历下区"},
                "geometry": {"type": "Polygon", "coordinates": [[[117, 36], [118, 36], [118, 37], [117, 36]]]},
            }
        ],
    }
    assert clean_value(ALL[13], value) == value


def test_values_must_be_a_dict():
    with pytest.raises(RecordValidationError):
        clean_values(ALL, ["req"])


# --- keys and masking -----------------------------------------------------------------------------------


def test_key_purpose_is_shared_for_ids_and_per_registry_otherwise():
    pid, other = parse_fields(
        [f(name="id_number", type="resident_id", sensitivity="personal"), f(name="no", lookup=True)]
    )
    assert key_purpose("population.person", pid) == key_purpose("social.insured", pid) == "resident_id"
    assert key_purpose("population.household", other) == "population.household.no"


def test_mask_value_by_type_and_name():
    pid, name, tel, address, uscc, born, note = parse_fields(
        [
            f(name="id_number", type="resident_id", sensitivity="personal"),
            f(name="name", sensitivity="personal"),
            f(name="phone", type="phone", sensitivity="personal"),
            f(name="address", sensitivity="personal"),
            f(name="credit_code", type="uscc"),
            f(name="birth_date", type="date", sensitivity="personal"),
            f(name="note", sensitivity="personal"),
        ]
    )
    assert mask_value(pid, "370102199001011234") == "370102********1234"
    assert mask_value(name, "欧阳娜娜") == "欧***"
    assert mask_value(tel, "13812345678") == "138****5678"
    assert mask_value(address, "山东省济南市历下区泉城路1号") == "山东省济南市历下区****"
    assert mask_value(uscc, "91370102MA3C12345X") == "91370102********5X"
    assert mask_value(born, "1990-01-01") == "****"
    masked = mask_value(note, "abcdefgh")
    assert masked.startswith("ab") and masked.endswith("gh") and "cdef" not in masked
    assert mask_value(note, None) == ""
    (explicit,) = parse_fields([f(name="holder", mask="name", sensitivity="personal")])
    assert mask_value(explicit, "张三") == "张*"


def test_resident_id_fast_path_never_accepts_what_the_kernel_refuses():
    import random

    from django.core.exceptions import ValidationError

    from dgov.kernel.validators import id_check_digit, validate_resident_id
    from dgov.registry.schema import _clean_resident_id

    rnd = random.Random(7)
    regions = ["370102", "110101", "999999", "370100", "000000", "441900"]
    today = datetime.date.today()
    candidates = []
    for _ in range(3000):
        region = rnd.choice(regions)
        born = rnd.choice(
            [
                f"{rnd.randint(1880, today.year + 1):04d}{rnd.randint(0, 13):02d}{rnd.randint(0, 32):02d}",
                (today + datetime.timedelta(days=rnd.randint(-3, 3))).strftime("%Y%m%d"),
            ]
        )
        first17 = f"{region}{born}{rnd.randint(0, 999):03d}"
        check = id_check_digit(first17) if rnd.random() < 0.8 else rnd.choice("0123456789X")
        candidates.append(first17 + check)
    candidates += [" " + candidates[0].lower() + " ", "", "12345", "37010219900101123Y"]
    accepted = 0
    for candidate in candidates:
        try:
            expected = validate_resident_id(candidate, "证件")
        except ValidationError as exc:
            with pytest.raises(ValidationError) as mine:
                _clean_resident_id(candidate, "证件")
            assert mine.value.messages == exc.messages
        else:
            assert _clean_resident_id(candidate, "证件") == expected
            accepted += 1
    assert 100 < accepted < len(candidates)
