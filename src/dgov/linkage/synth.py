"""A labelled synthetic Chinese benchmark for entity resolution, and precision/recall/F1 of a result.

:func:`generate_link` makes two "departments" that hold overlapping sets of persons: a clean
population register (公安, every record with a valid resident ID number) and a second department
(民政) whose copies carry the errors real data has — typos, homophones (同音字), look-alike
characters (形近字), swapped and mistyped digits in dates, ID numbers and phones, moved addresses,
missing ID numbers, other date and phone formats, full-width digits — and the true links.
:func:`generate_dedupe` makes one table with duplicates. Households give hard negatives: relatives
share the surname, the address and often the phone; twins also share the birth date.

Everything is drawn from a seeded ``random.Random``, so a seed always gives the same data. Names,
IDs and phones are synthetic (IDs carry valid check characters over real GB/T 2260 codes).
"""

from __future__ import annotations

import csv
import datetime
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dgov.kernel import validators
from dgov.linkage import normalize


def _words(text: str) -> tuple[str, ...]:
    """The space-separated words of ``text`` (keeps long character lists readable)."""
    return tuple(text.split())


# Common surnames with rough relative frequencies (per mille of the population).
SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 71),
    ("李", 79),
    ("张", 69),
    ("刘", 54),
    ("陈", 45),
    ("杨", 31),
    ("黄", 22),
    ("赵", 22),
    ("吴", 20),
    ("周", 19),
    ("徐", 16),
    ("孙", 15),
    ("马", 14),
    ("朱", 13),
    ("胡", 13),
    ("郭", 12),
    ("何", 12),
    ("高", 11),
    ("林", 11),
    ("罗", 10),
    ("郑", 10),
    ("梁", 9),
    ("谢", 8),
    ("宋", 8),
    ("唐", 7),
    ("许", 7),
    ("韩", 7),
    ("冯", 7),
    ("邓", 7),
    ("曹", 7),
    ("彭", 6),
    ("曾", 6),
    ("肖", 6),
    ("田", 6),
    ("董", 6),
    ("袁", 5),
    ("潘", 5),
    ("于", 5),
    ("蒋", 5),
    ("蔡", 5),
    ("余", 5),
    ("杜", 5),
    ("叶", 5),
    ("程", 5),
    ("苏", 4),
    ("魏", 4),
    ("吕", 4),
    ("丁", 4),
    ("任", 4),
    ("沈", 4),
    ("姚", 4),
    ("卢", 4),
    ("姜", 4),
    ("崔", 4),
    ("钟", 4),
    ("谭", 3),
    ("陆", 3),
    ("汪", 3),
    ("范", 3),
    ("金", 3),
    ("石", 3),
    ("廖", 3),
    ("贾", 3),
    ("夏", 3),
    ("韦", 3),
    ("付", 3),
    ("方", 3),
    ("白", 3),
    ("邹", 3),
    ("孟", 3),
    ("熊", 3),
    ("秦", 3),
    ("邱", 3),
    ("江", 3),
    ("尹", 3),
    ("薛", 2),
    ("闫", 2),
    ("段", 2),
    ("雷", 2),
    ("侯", 2),
    ("龙", 2),
    ("史", 2),
    ("陶", 2),
    ("黎", 2),
    ("贺", 2),
    ("顾", 2),
    ("毛", 2),
    ("郝", 2),
    ("龚", 2),
    ("邵", 2),
    ("万", 2),
    ("钱", 2),
    ("严", 2),
    ("申", 1),
    ("单", 1),
    ("欧阳", 0.5),
    ("司马", 0.2),
    ("诸葛", 0.1),
    ("上官", 0.2),
)

GIVEN_MALE = _words(
    "伟 强 磊 军 勇 杰 涛 明 超 刚 平 辉 鹏 华 飞 鑫 波 斌 宇 浩 凯 健 俊 帆 帅 旭 宁 龙 林 "
    "阳 建 国 峰 亮 成 东 文 志 海 鸣 旦 淮 天 振 晨 博 瑞 昊 轩 睿 泽 宏 德 兵 广 永 洪 毅 "
    "卫 利 学 庆 福 生 春 兴 荣 新 祥 松 栋 良 红 安 江"
)
GIVEN_FEMALE = _words(
    "芳 娜 敏 静 丽 艳 娟 霞 秀 英 燕 玲 桂 丹 萍 红 玉 兰 梅 莉 婷 雪 琳 晶 颖 慧 倩 琴 "
    "云 洁 莹 晴 璐 欣 怡 佳 悦 梦 雨 思 涵 瑶 婉 蕾 薇 月 美 凤 珍 菲 妍 露 宁 爽 岚 蓉 茜 "
    "媛 淑 娇 嘉 彤 馨 诗 千"
)

# More everyday characters, so that homophone and typo substitutes exist for the name characters.
EXTRA_CHARS = _words(
    "汪 章 柳 晨 阳 皇 伍 武 许 荪 琳 黎 厉 刍 忠 钟 仲 众 力 立 丽 理 礼 励 利 历 例 李 里 "
    "炜 玮 维 唯 卫 魏 未 位 味 琪 淇 奇 其 棋 齐 旗 骐 娟 涓 鹃 捐 卷 杰 洁 结 捷 节 婕 "
    "敏 闽 民 珉 静 靖 婧 敬 境 镜 竞 晶 京 精 经 荆 菁 明 鸣 铭 名 茗 冥 超 朝 潮 巢 "
    "涛 桃 陶 滔 韬 强 墙 蔷 磊 蕾 雷 垒 芳 方 芬 纷 放 访 房 防 华 桦 骅 花 滑 化 画 "
    "海 亥 骇 宏 红 洪 虹 鸿 宇 雨 语 羽 玉 域 遇 誉 育 浩 昊 好 豪 号 皓 颢 俊 骏 峻 浚 "
    "军 君 均 钧 平 萍 苹 评 屏 坪 瓶 辉 晖 灰 挥 徽 慧 惠 会 汇 卉 秀 绣 袖 岫 英 莹 鹰 "
    "樱 影 颖 应 婷 亭 庭 停 霆 廷 丹 单 担 旦 但 诞 燕 艳 雁 宴 焰 彦 雪 薛 学 穴 梅 玫 "
    "媒 眉 煤 莉 梨 犁 璃 兰 蓝 岚 澜 栏 拦 婉 碗 晚 皖 菀 怡 宜 仪 怡 贻 颐 悦 越 月 阅 "
    "跃 岳 思 丝 司 斯 私 涵 含 寒 函 韩 晗 瑶 遥 摇 谣 尧 姚 梦 孟 盟 萌 蒙 猛"
)

# Confusions the generator makes for "look-alike" errors: pairs the engine's table knows, and
# some it does not (those are then only one character apart for the engine).
GENERATOR_LOOKALIKES = (
    "杨扬",
    "侯候",
    "石右",
    "白自",
    "申由",
    "晴睛",
    "莹萤",
    "颖颍",
    "鸣呜",
    "旦且",
    "淮准",
    "天夭",
    "千干",
    "未末",
    "己已",
    "士土",
    "日曰",
    "免兔",
    "辉挥",
    "琳淋",
    "婷停",
    "锋峰",
    "刚钢",
    "宇字",
    "玉王",
)

ROADS = _words(
    "人民路 解放路 建设路 中山路 和平路 胜利路 新华路 文化路 经十路 泉城路 历山路 花园路 工业南路 "
    "山大路 二环东路 舜耕路 旅游路 英雄山路 纬二路 经七路 香港路 闽江路 延安路 辽宁路 青年路 "
    "东风路 幸福街 光明街 团结路 振兴路 北园大街 西市场 黄河路 泰山路 长江路 南京路 北京路 上海路"
)
COMMUNITIES = _words(
    "阳光花园 锦绣家园 绿城小区 幸福里 翡翠城 金色港湾 书香门第 碧桂园 万科城 山水佳苑 "
    "世纪花园 东方名苑 丽景苑 和谐家园 紫薇苑 康乐小区 新兴小区 朝阳小区 文苑小区 建设小区"
)


@dataclass
class Person:
    """One synthetic person: the truth that every record of this person derives from."""

    key: int
    family: str
    given: str
    sex: str
    birth: datetime.date
    region: str
    id_number: str
    address: str
    province_name: str
    postcode: str
    phone: str


@dataclass
class LinkBenchmark:
    """Two departments' tables, their column → role mappings and the true links between their rows."""

    left_name: str
    right_name: str
    left_rows: list[dict[str, str]]
    right_rows: list[dict[str, str]]
    left_columns: dict[str, str]
    right_columns: dict[str, str]
    left_id: str
    right_id: str
    truth: set[tuple[str, str]] = field(default_factory=set)

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``<left>.csv``, ``<right>.csv``, ``truth.csv`` and a ready ``link.yaml``; returns the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "left": directory / f"{self.left_name}.csv",
            "right": directory / f"{self.right_name}.csv",
            "truth": directory / "truth.csv",
            "config": directory / "link.yaml",
        }
        _write_csv(paths["left"], self.left_rows)
        _write_csv(paths["right"], self.right_rows)
        _write_csv(
            paths["truth"],
            [{"left_id": a, "right_id": b} for a, b in sorted(self.truth)],
        )
        paths["config"].write_text(self.config_yaml(), encoding="utf-8")
        return paths

    def config_yaml(self) -> str:
        """A ``dgov link`` config for the written files (mode link, default blocking and threshold)."""
        lines = ["mode: link", "tables:"]
        for name, id_column, columns in (
            (self.left_name, self.left_id, self.left_columns),
            (self.right_name, self.right_id, self.right_columns),
        ):
            lines += [f"  - name: {name}", f"    path: {name}.csv", f"    id_column: {id_column}", "    columns:"]
            lines += [f"      {column}: {role}" for column, role in columns.items()]
        lines += [
            "output:",
            "  pairs: out/pairs.csv",
            "  clusters: out/clusters.csv",
            "golden:",
            "  authority:",
            f"    full_name: {self.left_name}",
            f"    birth_date: {self.left_name}",
            f"    identifier: {self.left_name}",
            f"    sex: {self.left_name}",
            f"    address: {self.right_name}",
            f"    phone: {self.right_name}",
            "  records: out/golden.csv",
            "  conflicts: out/conflicts.csv",
        ]
        return "\n".join(lines) + "\n"


@dataclass
class DedupeBenchmark:
    """One table with duplicate records and the true entity of every row."""

    name: str
    rows: list[dict[str, str]]
    columns: dict[str, str]
    id_column: str
    entity_of: dict[str, int] = field(default_factory=dict)

    @property
    def truth(self) -> set[tuple[str, str]]:
        """All pairs of row ids (ordered) that belong to the same entity."""
        return pairs_from_clusters(self._clusters().values())

    def _clusters(self) -> dict[int, list[str]]:
        """Row ids per entity."""
        clusters: dict[int, list[str]] = defaultdict(list)
        for row_id, entity in self.entity_of.items():
            clusters[entity].append(row_id)
        return clusters

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``<name>.csv``, ``truth.csv`` (row id, entity) and a ready ``link.yaml``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"table": directory / f"{self.name}.csv", "truth": directory / "truth.csv"}
        paths["config"] = directory / "link.yaml"
        _write_csv(paths["table"], self.rows)
        _write_csv(paths["truth"], [{"row_id": r, "entity": e} for r, e in self.entity_of.items()])
        lines = ["mode: dedupe", "tables:", f"  - name: {self.name}", f"    path: {self.name}.csv"]
        lines += [f"    id_column: {self.id_column}", "    columns:"]
        lines += [f"      {column}: {role}" for column, role in self.columns.items()]
        lines += ["output:", "  pairs: out/pairs.csv", "  clusters: out/clusters.csv"]
        paths["config"].write_text("\n".join(lines) + "\n", encoding="utf-8")
        return paths


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    """Write dict rows as UTF-8 CSV with a header."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)


# --- population --------------------------------------------------------------------------------


class _Population:
    """Draws persons (with households) from the seeded random generator."""

    def __init__(self, rng: random.Random, province: str = "37") -> None:
        self.rng = rng
        entries = validators.loc_entries()
        counties = [
            code
            for code, entry in entries.items()
            if entry.current_name and not code.endswith("00") and entry.current_name != "市辖区"
        ]
        self.home = [c for c in counties if c.startswith(province)]
        self.elsewhere = [c for c in counties if not c.startswith(province)]
        self.names = {code: entry.current_name for code, entry in entries.items() if entry.current_name}
        self.surnames = [s for s, _w in SURNAMES]
        self.surname_weights = [w for _s, w in SURNAMES]
        self.used_ids: set[str] = set()
        self.used_phones: set[str] = set()
        self.sequence: dict[tuple[str, datetime.date], int] = defaultdict(int)
        self.next_key = 0

    def county(self) -> str:
        """A county code: mostly of the home province."""
        return self.rng.choice(self.home if self.rng.random() < 0.85 else self.elsewhere)

    def address(self, county: str) -> tuple[str, str, str]:
        """(full address, province name, postcode) of a random dwelling in ``county``."""
        rng = self.rng
        province = self.names.get(county[:2] + "0000", "")
        city = self.names.get(county[:4] + "00", "") if county[2:4] not in {"90"} else ""
        county_name = self.names.get(county, "")
        if rng.random() < 0.6:
            detail = f"{rng.choice(ROADS)}{rng.randint(1, 400)}号"
        else:
            detail = (
                f"{rng.choice(ROADS)}{rng.choice(COMMUNITIES)}{rng.randint(1, 30)}号楼"
                f"{rng.randint(1, 6)}单元{rng.randint(1, 30)}0{rng.randint(1, 4)}室"
            )
        postcode = f"{(int(county[:4]) * 7919) % 9000 + 1000:04d}{int(county[4:]) % 100:02d}"
        return f"{province}{city}{county_name}{detail}", province, postcode

    def phone(self) -> str:
        """A new mobile number."""
        while True:
            number = f"1{self.rng.choice('3456789')}{self.rng.randrange(10**9):09d}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def id_number(self, region: str, birth: datetime.date, sex: str) -> str:
        """A resident ID number, unique, with the sequence parity of ``sex``."""
        while True:
            seq = self.rng.randrange(500) * 2 + (1 if sex == "M" else 0)
            number = validators.make_resident_id(region, birth, seq)
            if number not in self.used_ids:
                self.used_ids.add(number)
                return number

    def given_name(self, sex: str) -> str:
        """A one- or two-character given name."""
        pool = GIVEN_MALE if sex == "M" else GIVEN_FEMALE
        if self.rng.random() < 0.25:
            return self.rng.choice(pool)
        return self.rng.choice(pool) + self.rng.choice(pool)

    def birth(self) -> datetime.date:
        """A birth date between 1940 and 2010."""
        return datetime.date(1940, 1, 1) + datetime.timedelta(days=self.rng.randrange(71 * 365))

    def person(self, *, family: str | None = None, household: Person | None = None, twin: bool = False) -> Person:
        """A new person; with ``household`` a relative sharing surname, address and usually the phone."""
        rng = self.rng
        sex = rng.choice("MF")
        if household is not None:
            family = household.family
            region, address, province_name, postcode = (
                household.region,
                household.address,
                household.province_name,
                household.postcode,
            )
            birth = household.birth if twin else self.birth()
            phone = household.phone if rng.random() < 0.6 else self.phone()
        else:
            family = family or rng.choices(self.surnames, self.surname_weights)[0]
            region = self.county()
            address, province_name, postcode = self.address(region)
            birth = self.birth()
            phone = self.phone()
        given = self.given_name(sex)
        if household is not None:
            while given == household.given:
                given = self.given_name(sex)
        person = Person(
            key=self.next_key,
            family=family,
            given=given,
            sex=sex,
            birth=birth,
            region=region,
            id_number=self.id_number(region, birth, sex),
            address=address,
            province_name=province_name,
            postcode=postcode,
            phone=phone,
        )
        self.next_key += 1
        return person

    def people(self, count: int) -> list[Person]:
        """``count`` persons, about 8 % of them relatives of an earlier person (1 % twins)."""
        persons: list[Person] = []
        while len(persons) < count:
            if persons and self.rng.random() < 0.08:
                relative_of = self.rng.choice(persons)
                persons.append(self.person(household=relative_of, twin=self.rng.random() < 0.12))
            else:
                persons.append(self.person())
        return persons


# --- errors ------------------------------------------------------------------------------------


class _Errors:
    """Error injection for copies of person records."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        pool = sorted(set(GIVEN_MALE) | set(GIVEN_FEMALE) | set(EXTRA_CHARS) | {s for s, _ in SURNAMES if len(s) == 1})
        self.pool = pool
        by_pinyin: dict[str, list[str]] = defaultdict(list)
        for char in pool:
            by_pinyin[normalize.pinyin(char)].append(char)
        self.homophones = {c: [o for o in by_pinyin[normalize.pinyin(c)] if o != c] for c in pool}
        self.lookalikes: dict[str, list[str]] = defaultdict(list)
        for group in GENERATOR_LOOKALIKES:
            for char in group:
                self.lookalikes[char] += [o for o in group if o != char]

    def name(self, family: str, given: str, rates: Mapping[str, float]) -> tuple[str, str]:
        """(family, given) after at most one of: homophone, look-alike, typo, dropped character."""
        rng = self.rng
        roll = rng.random()
        for kind in ("homophone", "lookalike", "typo", "drop"):
            rate = rates.get(kind, 0.0)
            if roll < rate:
                return self._name_error(kind, family, given)
            roll -= rate
        return family, given

    def _name_error(self, kind: str, family: str, given: str) -> tuple[str, str]:
        """Apply one kind of name error to a character of the name (given name 4 times out of 5)."""
        rng = self.rng
        if kind == "drop":
            return (family, given[1:]) if len(given) == 2 else (family, given)
        table = {"homophone": self.homophones, "lookalike": self.lookalikes}.get(kind)
        target_family = rng.random() < 0.2 or not given
        text = family if target_family else given
        positions = list(range(len(text)))
        rng.shuffle(positions)
        for position in positions:
            char = text[position]
            choices = table.get(char) if table is not None else [c for c in self.pool if c != char]
            if choices:
                text = text[:position] + rng.choice(choices) + text[position + 1 :]
                break
        else:
            if table is not None:  # no homophone/look-alike for this name: a plain typo instead
                return self._name_error("typo", family, given)
        return (text, given) if target_family else (family, text)

    def digits(self, value: str, kind: str) -> str:
        """Swap two adjacent digits (``swap``) or replace one digit (``typo``)."""
        rng = self.rng
        positions = [i for i, c in enumerate(value) if c.isdigit()]
        if kind == "swap":
            candidates = [i for i in positions[:-1] if i + 1 in positions and value[i] != value[i + 1]]
            if not candidates:
                return value
            i = rng.choice(candidates)
            return value[:i] + value[i + 1] + value[i] + value[i + 2 :]
        i = rng.choice(positions)
        return value[:i] + rng.choice([d for d in "0123456789" if d != value[i]]) + value[i + 1 :]


_FULL_WIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")


def _format_date(date: datetime.date, style: int) -> str:
    """A date in one of the formats departments use."""
    if style == 0:
        return f"{date.year}年{date.month}月{date.day}日"
    if style == 1:
        return f"{date.year}/{date.month:02d}/{date.day:02d}"
    return f"{date:%Y%m%d}"


class _Copier:
    """Writes person records the way each department stores them."""

    def __init__(self, rng: random.Random, population: _Population) -> None:
        self.rng = rng
        self.population = population
        self.errors = _Errors(rng)

    def police(self, person: Person, row_id: str) -> dict[str, str]:
        """A population-register record: clean, a valid ID number, 1–2 % name slips."""
        family, given = self.errors.name(person.family, person.given, {"homophone": 0.01, "typo": 0.005})
        return {
            "记录号": row_id,
            "姓名": family + given,
            "性别": "男" if person.sex == "M" else "女",
            "出生日期": f"{person.birth:%Y-%m-%d}",
            "公民身份号码": person.id_number,
            "户籍地址": person.address,
            "联系电话": person.phone,
        }

    def civil(self, person: Person, row_id: str) -> dict[str, str]:
        """A second department's record: other formats and the errors of :mod:`synth`'s docstring."""
        rng, errors = self.rng, self.errors
        family, given = errors.name(
            person.family, person.given, {"homophone": 0.08, "lookalike": 0.05, "typo": 0.04, "drop": 0.01}
        )
        name = family + given
        if rng.random() < 0.05:
            name = f"{family} {given}"
        birth = _format_date(person.birth, rng.randrange(3))
        roll = rng.random()
        if roll < 0.05:
            birth = errors.digits(birth, "swap")
        elif roll < 0.08:
            birth = errors.digits(birth, "typo")
        elif roll < 0.09 and person.birth.day <= 12:
            birth = _format_date(person.birth.replace(month=person.birth.day, day=person.birth.month), 2)
        elif roll < 0.10:
            birth = _format_date(self.population.birth(), 2)
        id_number = person.id_number
        roll = rng.random()
        if roll < 0.20:
            id_number = ""
        elif roll < 0.24:
            id_number = errors.digits(id_number, "swap")
        elif roll < 0.26:
            id_number = errors.digits(id_number, "typo")
        elif roll < 0.29:
            id_number = id_number.translate(_FULL_WIDTH)
        elif roll < 0.31 and person.birth.year < 2000:
            id_number = id_number[:6] + id_number[8:17]  # a first-generation 15-digit number
        address, postcode = person.address, person.postcode
        roll = rng.random()
        if roll < 0.15:
            address, _province, postcode = self.population.address(self.population.county())
        elif roll < 0.45:
            address = address.removeprefix(person.province_name)
        elif roll < 0.48:
            address = errors.digits(address, "typo")
        phone = person.phone
        roll = rng.random()
        if roll < 0.15:
            phone = ""
        elif roll < 0.25:
            phone = self.population.phone()
        elif roll < 0.28:
            phone = errors.digits(phone, "swap")
        elif roll < 0.48:
            phone = rng.choice([f"+86 {phone}", f"{phone[:3]}-{phone[3:7]}-{phone[7:]}", f"{phone[:3]} {phone[3:]}"])
        sex = {"M": rng.choice(["1", "男"]), "F": rng.choice(["2", "女"])}[person.sex]
        if rng.random() < 0.05:
            sex = ""
        return {
            "id": row_id,
            "xm": name,
            "xb": sex,
            "csrq": birth,
            "sfzh": id_number,
            "jzdz": address,
            "yzbm": postcode if rng.random() > 0.3 else "",
            "lxdh": phone,
        }


POLICE_COLUMNS = {
    "姓名": "full_name",
    "性别": "sex",
    "出生日期": "birth_date",
    "公民身份号码": "identifier",
    "户籍地址": "address",
    "联系电话": "phone",
}
CIVIL_COLUMNS = {
    "xm": "full_name",
    "xb": "sex",
    "csrq": "birth_date",
    "sfzh": "identifier",
    "jzdz": "address",
    "yzbm": "postcode",
    "lxdh": "phone",
}


def generate_link(n_left: int = 20_000, n_right: int = 16_000, *, overlap: float = 0.75, seed: int = 36344):
    """Two departments: ``n_left`` clean register rows and ``n_right`` rows of which ``overlap`` are the same persons.

    Rows are shuffled; ids are ``P…`` (police) and ``C…`` (civil affairs). Returns a
    :class:`LinkBenchmark` whose ``truth`` holds the (left id, right id) of every true link.
    """
    rng = random.Random(seed)
    population = _Population(rng)
    shared = min(int(n_right * overlap), n_left)
    persons = population.people(n_left + n_right - shared)
    left_persons = persons[:n_left]
    right_persons = rng.sample(left_persons, shared) + persons[n_left:]
    rng.shuffle(left_persons)
    rng.shuffle(right_persons)
    copier = _Copier(rng, population)
    left_id = {p.key: f"P{i:07d}" for i, p in enumerate(left_persons, start=1)}
    right_id = {p.key: f"C{i:07d}" for i, p in enumerate(right_persons, start=1)}
    left_rows = [copier.police(p, left_id[p.key]) for p in left_persons]
    right_rows = [copier.civil(p, right_id[p.key]) for p in right_persons]
    truth = {(left_id[key], right_id[key]) for key in left_id.keys() & right_id.keys()}
    return LinkBenchmark(
        left_name="police",
        right_name="civil",
        left_rows=left_rows,
        right_rows=right_rows,
        left_columns=dict(POLICE_COLUMNS),
        right_columns=dict(CIVIL_COLUMNS),
        left_id="记录号",
        right_id="id",
        truth=truth,
    )


def generate_dedupe(n_records: int = 10_000, *, duplicate_rate: float = 0.3, seed: int = 36344) -> DedupeBenchmark:
    """One table of about ``n_records`` rows: each person once, ``duplicate_rate`` of them 2–3 times.

    Duplicates are written with the second department's errors and formats (so about a fifth of
    them lack an ID number), under the first department's column names.
    """
    rng = random.Random(seed)
    population = _Population(rng)
    copier = _Copier(rng, population)
    rows: list[tuple[int, dict[str, str]]] = []
    while len(rows) < n_records:
        for person in population.people(min(1000, n_records)):
            rows.append((person.key, copier.police(person, "")))
            if rng.random() < duplicate_rate:
                for _copy in range(1 if rng.random() < 0.8 else 2):
                    civil = copier.civil(person, "")
                    rows.append(
                        (
                            person.key,
                            {
                                "记录号": "",
                                "姓名": civil["xm"],
                                "性别": civil["xb"],
                                "出生日期": civil["csrq"],
                                "公民身份号码": civil["sfzh"],
                                "户籍地址": civil["jzdz"],
                                "联系电话": civil["lxdh"],
                            },
                        )
                    )
    rows = rows[:n_records]
    rng.shuffle(rows)
    entity_of: dict[str, int] = {}
    table_rows = []
    for index, (entity, row) in enumerate(rows, start=1):
        row["记录号"] = f"R{index:08d}"
        entity_of[row["记录号"]] = entity
        table_rows.append(row)
    return DedupeBenchmark(
        name="persons", rows=table_rows, columns=dict(POLICE_COLUMNS), id_column="记录号", entity_of=entity_of
    )


# --- evaluation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """Precision, recall and F1 of predicted links against the truth."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        """Share of predicted links that are true."""
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        """Share of true links that were predicted."""
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __str__(self) -> str:
        """``precision 0.991 recall 0.972 F1 0.981 (tp …)``."""
        return (
            f"precision {self.precision:.4f} recall {self.recall:.4f} F1 {self.f1:.4f} "
            f"(tp {self.true_positives}, fp {self.false_positives}, fn {self.false_negatives})"
        )


def _ordered(a: str, b: str) -> tuple[str, str]:
    """An unordered pair in a canonical order."""
    return (a, b) if a <= b else (b, a)


def pairs_from_clusters(clusters: Iterable[Iterable[str]]) -> set[tuple[str, str]]:
    """Every pair (canonically ordered) inside each cluster of row ids."""
    pairs: set[tuple[str, str]] = set()
    for cluster in clusters:
        members = sorted(set(cluster))
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                pairs.add((a, b))
    return pairs


def evaluate(predicted: Iterable[tuple[str, str]], truth: Iterable[tuple[str, str]], *, ordered: bool = True) -> Scores:
    """Compare predicted pairs with true pairs; ``ordered=False`` treats (a, b) and (b, a) as one pair."""
    if ordered:
        predicted_set, truth_set = set(predicted), set(truth)
    else:
        predicted_set = {_ordered(a, b) for a, b in predicted}
        truth_set = {_ordered(a, b) for a, b in truth}
    true_positives = len(predicted_set & truth_set)
    return Scores(true_positives, len(predicted_set) - true_positives, len(truth_set) - true_positives)


def read_truth(path: str | Path) -> tuple[set[tuple[str, str]], bool]:
    """Read a ``truth.csv`` written by :meth:`LinkBenchmark.write` or :meth:`DedupeBenchmark.write`.

    Returns (true pairs, ordered): link truth has ``left_id,right_id`` (ordered pairs); dedupe truth
    has ``row_id,entity`` and becomes unordered pairs within each entity.
    """
    with Path(path).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        if {"left_id", "right_id"} <= fields:
            return {(row["left_id"], row["right_id"]) for row in reader}, True
        if {"row_id", "entity"} <= fields:
            clusters: dict[str, list[str]] = defaultdict(list)
            for row in reader:
                clusters[row["entity"]].append(row["row_id"])
            return pairs_from_clusters(clusters.values()), False
    raise ValueError(f"{path}: expected columns left_id,right_id or row_id,entity")
