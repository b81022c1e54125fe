"""The demo province: a deterministic synthetic province generated from a seed.

`dgov demo` builds, in order: the GB/T 2260 divisions (plus synthetic townships and villages
for the demo province), a realistic set of departments, officials with demo logins, three OpenID
Connect clients (接入应用, :func:`ensure_demo_clients`), the shipped
library definitions as registries (:func:`dgov.registry.libraries.install_libraries`), and then
records in every registry, each written by its authoritative department:

* population (公安): households and persons with valid ID numbers and addresses in real division
  codes; each household's head is set when it is created (uids are drawn up front, so households
  and persons refer to each other without a second pass); births (卫健), deaths (卫健) and
  marriages/divorces (民政) as events;
* legal entities (市场监管): enterprises with valid USCCs whose legal representatives are adults
  drawn from the persons;
* public credit (发改): 双公示 licences and penalties of demo enterprises, red and black list entries;
* macro economy (统计): eight quarters of indicators for the province and its cities;
* spatial geography: divisions (names by 民政, synthetic centroids and square boundaries by 自然资源,
  written as a second source), standard addresses and points of interest;
* e-licence index (大数据局): business licences and marriage certificates;
* theme libraries: social insurance enrolments (人社) and emergency resources (应急).

Records are written with ``bulk_create_records(validate=False)``: the generator produces values
in their cleaned form and guarantees their validity (ID numbers and USCCs carry correct check
characters; the tests validate every one of them).

Determinism: the same seed and sizes give the same names, ID numbers, households, record uids and
USCCs (ciphertexts differ because SM4-GCM nonces are random, by design). Everything is fictitious.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.hashers import make_password
from django.db import transaction

from dgov.identity import services as identity_services
from dgov.identity.models import User
from dgov.kernel.models import Division, Organization
from dgov.kernel.services import audit, divisions, organizations
from dgov.kernel.validators import make_resident_id, make_uscc
from dgov.registry import demo_names as names
from dgov.registry import libraries, services
from dgov.registry.models import DemoDataset, Record

DEMO_PASSWORD = "dgov-demo-2026"  # noqa: S105 - published demo credential, embedded mode only
# Officials and administrators must pass a second factor: the demo gives them all this published
# TOTP secret (ADR 0012); `dgov identity mfa code` prints its current code.
DEMO_TOTP_SECRET = identity_services.DEMO_TOTP_SECRET
# Fictitious mobile numbers of the fixed demo accounts (SMS codes land in the simulated gateway).
DEMO_PHONES = {
    "admin": "13900000001",
    "dsj_admin": "13900000002",
    "zwfw_window": "13900000003",
    "gat_official": "13900000004",
    "citizen": "13900000005",
    "enterprise": "13900000006",
}
DEMO_ACTOR = "system:demo"
BATCH = 2000
TODAY = dt.date(2026, 11, 1)  # the demo's "today": fixed, so that ages and dates are deterministic
MALE, FEMALE = "1", "2"  # GB/T 2261.1

# Fixed demo accounts: (username, kind, display name, department code suffix or None, staff, superuser, role)
DEMO_ACCOUNTS = (
    ("admin", User.Kind.ADMIN, "系统管理员", None, True, True, "平台管理员 platform administrator"),
    ("dsj_admin", User.Kind.OFFICIAL, "省大数据局管理员", "DSJ", True, False, "数据管理员 data administrator"),
    ("zwfw_window", User.Kind.OFFICIAL, "省政务服务窗口", "ZWFW", False, False, "窗口人员 window official"),
    ("gat_official", User.Kind.OFFICIAL, "省公安厅工作人员", "GAT", False, False, "部门工作人员 department official"),
    ("citizen", User.Kind.PERSON, "", None, False, False, "办事群众 citizen"),
    ("enterprise", User.Kind.ENTERPRISE, "", None, False, False, "企业经办人 enterprise agent"),
)

# OpenID Connect clients (接入应用) registered by the demo, so the provider is in use on `make run`:
# a department system (confidential, SM2-signed id_tokens, asks for consent), the platform's own
# native app (public, private-use scheme redirect, first-party: no consent) and a system-to-system
# data client (client credentials). `department` is the provincial department's kind.
DEMO_OIDC_CLIENTS = (
    {
        "client_id": "demo-wjw-system",
        "name": "省卫生健康委业务系统",
        "department": "WJ",
        "client_type": "confidential",
        "redirect_uris": ["https://wj.example.gov.cn/oidc/callback"],
        "post_logout_redirect_uris": ["https://wj.example.gov.cn/"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile", "phone", "offline_access"],
        "id_token_alg": "SM2",
        "first_party": False,
    },
    {
        "client_id": "demo-zhangshangban",
        "name": "掌上办",
        "department": "DSJ",
        "client_type": "public",
        "redirect_uris": ["cn.gov.example.zsb:/oauth2redirect"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile", "phone", "offline_access"],
        "id_token_alg": "RS256",
        "first_party": True,
    },
    {
        "client_id": "demo-data-sharing",
        "name": "数据共享服务",
        "department": "DSJ",
        "client_type": "confidential",
        "grant_types": ["client_credentials"],
        "scopes": ["registry:read"],
        "id_token_alg": "RS256",
        "first_party": False,
    },
)

# Rough bounding boxes (min lon, min lat, max lon, max lat) for synthetic geometry; for other provinces
# a box over central and eastern China.
PROVINCE_BOXES = {"37": (114.8, 34.4, 122.7, 38.4)}
CHINA_BOX = (97.0, 22.0, 122.0, 42.0)


@dataclass
class DemoReport:
    """What `generate` produced and how long each step took."""

    divisions: int = 0
    organizations: int = 0
    officials: int = 0
    oidc_clients: int = 0  # demo OIDC clients registered by this run
    registries: int = 0
    households: int = 0
    persons: int = 0
    enterprises: int = 0
    records: dict[str, int] = field(default_factory=dict)  # registry code → records created
    seconds: dict[str, float] = field(default_factory=dict)


def is_seeded(province_code: str | None = None) -> bool:
    """True when the demo province has been generated in this database."""
    qs = DemoDataset.objects.all()
    return (qs.filter(province_code=province_code) if province_code else qs).exists()


def demo_logins() -> list[dict[str, str]]:
    """The demo accounts with their password and role, for `make run` to print."""
    if not is_seeded():
        return []
    logins = []
    for username, *_rest, role in DEMO_ACCOUNTS:
        user = User.objects.filter(username=username).first()
        if user is None:
            continue
        login = {"username": username, "password": DEMO_PASSWORD, "role": role}
        if identity_services.mfa_required(user):
            login["totp_secret"] = DEMO_TOTP_SECRET
            login["role"] = f"{role}; 动态口令 TOTP {DEMO_TOTP_SECRET} (dgov identity mfa code)"
        logins.append(login)
    return logins


# --- Names, people, places ------------------------------------------------------------------------------


def _weighted_surname(rng: random.Random) -> str:
    """A surname drawn with a Zipf-like weight (common ones first), rarely a compound one."""
    if rng.random() < 0.004:
        return rng.choice(names.COMPOUND_SURNAMES)
    idx = min(int(rng.paretovariate(1.1)) - 1, len(names.SURNAMES) - 1)
    if idx >= len(names.SURNAMES) - 1:
        idx = rng.randrange(len(names.SURNAMES))
    return names.SURNAMES[idx]


def _given_name(rng: random.Random, sex: str) -> str:
    """A one- or two-character given name suited to the sex."""
    pool = names.GIVEN_MALE if sex == MALE else names.GIVEN_FEMALE
    first = rng.choice(pool if rng.random() < 0.8 else names.GIVEN_NEUTRAL)
    return first if rng.random() < 0.3 else first + rng.choice(pool)


def _years_later(date: dt.date, years: int) -> dt.date:
    """The same day ``years`` later (29 February becomes 28 February in common years)."""
    try:
        return date.replace(year=date.year + years)
    except ValueError:
        return date.replace(year=date.year + years, day=28)


def _age(birth: dt.date) -> int:
    """Completed years at the demo's today."""
    return TODAY.year - birth.year - ((TODAY.month, TODAY.day) < (birth.month, birth.day))


class _Uids:
    """Deterministic record uids (version-4 UUIDs from a seeded generator)."""

    def __init__(self, seed: int):
        self.rng = random.Random(f"{seed}:uids")

    def __call__(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)


@dataclass(slots=True)
class _Person:
    """What later steps need to know about a generated person."""

    uid: str
    id_number: str
    name: str
    sex: str
    birth: dt.date
    county: str
    household: str
    relation: str
    status: str = "normal"


class _PersonFactory:
    """Makes persons with unique, valid ID numbers for the demo province."""

    def __init__(self, rng: random.Random, counties: list[Division]):
        self.rng = rng
        self.counties = counties
        self.used: set[tuple[str, dt.date, int]] = set()

    def id_number(self, region: str, birth: dt.date, sex: str) -> str:
        """A unique ID number: region + birth date + sequence (odd for men) + check digit."""
        rng = self.rng
        for _ in range(1000):
            seq = rng.randrange(0, 500) * 2 + (1 if sex == MALE else 0)
            key = (region, birth, seq)
            if key not in self.used:
                self.used.add(key)
                return make_resident_id(region, birth, seq)
        raise RuntimeError("demo ID sequence space exhausted")  # pragma: no cover - 500 per day and region

    def birth(self, min_age: int, max_age: int) -> dt.date:
        """A birth date for an age in [min_age, max_age] years."""
        days = self.rng.randint(min_age * 365 + 1, max_age * 365 + 364)
        return TODAY - dt.timedelta(days=days)

    def phone(self, birth: dt.date) -> str:
        """A mobile number for anyone over twelve, else none."""
        if birth.year >= TODAY.year - 12:
            return ""
        return "1" + self.rng.choice("3578") + f"{self.rng.randrange(10**9):09d}"

    def birth_region(self, county: Division) -> str:
        """Where a person was born: mostly the home county, sometimes elsewhere in the province."""
        return county.code if self.rng.random() < 0.85 else self.rng.choice(self.counties).code


@dataclass
class _Address:
    """A structured household address: the standard-address parts and the full text with the flat."""

    road: str
    number: str
    building: str
    standard: str  # without unit and room: what spatial.address holds
    full: str  # with unit and room: what the household's address holds


def _address(rng: random.Random, village: Division) -> _Address:
    """A street address inside a (synthetic) village or community."""
    if village.name.endswith("社区"):
        road = rng.choice(names.STREETS)
        number = str(rng.randint(1, 399))
        building = str(rng.randint(1, 12))
        standard = f"{village.full_name}{road}{number}号{building}号楼"
        flat = f"{rng.randint(1, 4)}单元{rng.randint(1, 18)}{rng.randint(1, 4):02d}室"
        return _Address(road, number, building, standard, standard + flat)
    road = rng.choice(names.VILLAGE_ROADS)
    number = str(rng.randint(1, 199))
    standard = f"{village.full_name}{road}{number}号"
    return _Address(road, number, "", standard, standard)


# --- Departments ------------------------------------------------------------------------------------------


class _Departments:
    """The demo province's departments by (division code, kind), with the nearest one above a county."""

    def __init__(self, orgs: list[Organization], province_code: str):
        self.province_code = province_code
        self.by_place: dict[tuple[str, str], Organization] = {}
        for org in orgs:
            self.by_place.setdefault((org.division.code, org.kind), org)

    def provincial(self, kind: str) -> Organization:
        """The provincial department of a kind (e.g. 省公安厅 for GA)."""
        return self.by_place[(self.province_code, kind)]

    def nearest(self, *kinds: str, county: Division) -> Organization:
        """The department of the first of ``kinds`` at the county, else at its city, else at the province."""
        for code in (county.code, self._city_code(county), self.province_code):
            for kind in kinds:
                org = self.by_place.get((code, kind))
                if org is not None:
                    return org
        return self.provincial(kinds[-1])

    @staticmethod
    def _city_code(county: Division) -> str:
        """The county's city (the real one above placeholders such as 省直辖县级行政单位)."""
        parent = county.parent
        return parent.code if parent is not None else ""


# --- Bulk writing -------------------------------------------------------------------------------------------


def _writer(report: DemoReport, progress: Callable[[str, int], None]):
    """A function writing rows into a registry as a source department, counting into the report."""

    def write(code: str, rows, source: Organization, step: str) -> int:
        registry = services.get_registry(code)
        done = 0

        def tick(processed: int) -> None:
            nonlocal done
            progress(step, processed - done)
            done = processed

        created = services.bulk_create_records(
            registry, rows, actor=DEMO_ACTOR, source=source, batch_size=BATCH, progress=tick, validate=False
        )
        report.records[code] = report.records.get(code, 0) + created
        return created

    return write


# --- Population -------------------------------------------------------------------------------------------


@dataclass
class _Population:
    """Persons and households as generated, for the steps after them."""

    people: list[_Person] = field(default_factory=list)
    households: list[dict] = field(default_factory=list)
    addresses: list[tuple[Division, _Address]] = field(default_factory=list)
    couples: list[tuple[_Person, _Person]] = field(default_factory=list)
    singles: list[_Person] = field(default_factory=list)
    newborns: list[_Person] = field(default_factory=list)
    deceased: list[tuple[_Person, dt.date]] = field(default_factory=list)


def _persons(
    rng: random.Random,
    factory: _PersonFactory,
    villages: list[Division],
    n_persons: int,
    uid: _Uids,
    population: _Population,
) -> Iterator[dict]:
    """Yield person rows household by household (1–6 members) until n_persons; households collect aside."""
    made = 0
    serial = 0
    while made < n_persons:
        village = rng.choice(villages)
        county = village.parent.parent if village.level == Division.Level.VILLAGE else village
        address = _address(rng, village)
        surname = _weighted_surname(rng)
        household_key = uid()
        household_uid = str(household_key)
        members: list[tuple[str, str, dt.date, str]] = []  # (name, sex, birth, relation)
        head_sex = MALE if rng.random() < 0.7 else FEMALE
        head_birth = factory.birth(22, 85)
        members.append((surname + _given_name(rng, head_sex), head_sex, head_birth, "head"))
        head_age = _age(head_birth)
        if rng.random() < 0.75 and made + len(members) < n_persons:
            other = FEMALE if head_sex == MALE else MALE
            age = max(20, min(90, head_age + rng.randint(-5, 5)))
            members.append((_weighted_surname(rng) + _given_name(rng, other), other, factory.birth(age, age), "spouse"))
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3)) if head_age < 65 else 0):
            if made + len(members) >= n_persons or head_age < 23:
                break
            age = rng.randint(0, min(head_age - 21, 40))
            sex = rng.choice((MALE, FEMALE))
            members.append((surname + _given_name(rng, sex), sex, factory.birth(age, age), "child"))
        if head_age < 50 and rng.random() < 0.15 and made + len(members) < n_persons:
            age = min(95, head_age + rng.randint(24, 32))
            sex = rng.choice((MALE, FEMALE))
            members.append((surname + _given_name(rng, sex), sex, factory.birth(age, age), "parent"))
        serial += 1
        people = []
        keys = []
        for name, sex, birth, relation in members:
            keys.append(uid())
            person = _Person(
                uid=str(keys[-1]),
                id_number=factory.id_number(factory.birth_region(county), birth, sex),
                name=name,
                sex=sex,
                birth=birth,
                county=county.code,
                household=household_uid,
                relation=relation,
            )
            if relation == "parent" and _age(birth) >= 70 and rng.random() < 0.06:
                person.status = "deceased"
                died = TODAY - dt.timedelta(days=rng.randint(20, 1000))
                population.deceased.append((person, died))
            people.append(person)
        population.households.append(
            {
                "_uid": household_key,
                "household_no": f"{village.code[:6]}{serial:010d}",
                "head": people[0].uid,
                "household_type": "family",
                "address": address.full,
                "division_code": village.code,
                "registered_on": min(TODAY, head_birth + dt.timedelta(days=365 * 22 + rng.randrange(3000))).isoformat(),
            }
        )
        population.addresses.append((village, address))
        if len(people) > 1 and people[1].relation == "spouse":
            population.couples.append((people[0], people[1]))
        elif 25 <= head_age <= 60:
            population.singles.append(people[0])
        for person, key in zip(people, keys, strict=True):
            population.people.append(person)
            if person.relation == "child" and _age(person.birth) == 0:
                population.newborns.append(person)
            row = {
                "_uid": key,
                "id_number": person.id_number,
                "name": person.name,
                "sex": person.sex,
                "birth_date": person.birth.isoformat(),
                "ethnicity": rng.choice(names.ETHNICITIES),
                "address": address.full,
                "division_code": village.code,
                "household": household_uid,
                "relation": person.relation,
                "status": person.status,
            }
            phone = factory.phone(person.birth)
            if phone:
                row["phone"] = phone
            yield row
        made += len(people)


def _events(
    rng: random.Random, population: _Population, depts: _Departments, counties: dict[str, Division], uid: _Uids
) -> tuple[list[dict], list[dict], list[dict], list[tuple[_Person, _Person, str, dt.date, bool]]]:
    """Birth (卫健), death (卫健) and marriage/divorce (民政) events; returns (births, deaths, civil, marriages)."""
    births, deaths, civil = [], [], []
    for n, child in enumerate(population.newborns[:500], start=1):
        county = counties[child.county]
        births.append(
            {
                "_uid": uid(),
                "document_no": f"Q{child.county}{n:06d}",
                "kind": "birth",
                "person": child.uid,
                "date": child.birth.isoformat(),
                "place_division": child.county,
                "registrar": depts.nearest("WJ", county=county).code,
            }
        )
    for n, (person, died) in enumerate(population.deceased, start=1):
        deaths.append(
            {
                "_uid": uid(),
                "document_no": f"SW{person.county}{died.year}{n:05d}",
                "kind": "death",
                "person": person.uid,
                "date": died.isoformat(),
                "place_division": person.county,
                "registrar": depts.nearest("WJ", county=counties[person.county]).code,
            }
        )
    marriages: list[tuple[_Person, _Person, str, dt.date, bool]] = []  # (…, certificate number, date, divorced)
    serial = 0

    def register(kind: str, first: _Person, second: _Person, date: dt.date) -> str:
        nonlocal serial
        serial += 1
        letter = "J" if kind == "marriage" else "L"
        number = f"{letter}{first.county}-{date.year}-{serial:06d}"
        registrar = depts.nearest("MZ", county=counties[first.county]).code
        civil.append(
            {
                "_uid": uid(),
                "document_no": number,
                "kind": kind,
                "person": first.uid,
                "other_party": second.uid,
                "date": date.isoformat(),
                "place_division": first.county,
                "registrar": registrar,
            }
        )
        return number

    adult_couples = [c for c in population.couples if _age(c[0].birth) >= 22 and _age(c[1].birth) >= 22]
    for first, second in rng.sample(adult_couples, min(300, len(adult_couples))):
        youngest = max(first.birth, second.birth)
        date = min(TODAY - dt.timedelta(days=30), youngest + dt.timedelta(days=365 * rng.randint(22, 30)))
        marriages.append((first, second, register("marriage", first, second, date), date, False))
    men = [p for p in population.singles if p.sex == MALE]
    women = [p for p in population.singles if p.sex == FEMALE]
    for man, woman in list(zip(men, women, strict=False))[:30]:
        youngest = max(man.birth, woman.birth)
        # singles are at least 25, so both dates fall between their 23rd birthday and today
        married = min(youngest + dt.timedelta(days=365 * 23 + rng.randrange(700)), TODAY - dt.timedelta(days=730))
        divorced = min(TODAY - dt.timedelta(days=10), married + dt.timedelta(days=365 * rng.randint(1, 3)))
        marriages.append((man, woman, register("marriage", man, woman, married), married, True))
        register("divorce", man, woman, divorced)
    return births, deaths, civil, marriages


# --- Legal entities and credit ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Enterprise:
    """What later steps need to know about a generated enterprise."""

    uid: str
    uscc: str
    name: str
    type: str
    county: Division
    representative: _Person
    established: dt.date
    authority: Organization
    status: str


_ENTERPRISE_TYPES = (("llc", 50), ("individual", 25), ("jsc", 5), ("sole", 8), ("partnership", 4), ("cooperative", 8))
# GB 32100: registration authority 9 (market regulation) with organisation type 1 enterprise,
# 2 individual business, 3 farmers' cooperative.
_USCC_ORG_TYPE = {"individual": "2", "cooperative": "3"}


def _enterprises(
    rng: random.Random,
    n: int,
    counties: list[Division],
    adults: list[_Person],
    depts: _Departments,
    uid: _Uids,
    made: list[_Enterprise],
) -> Iterator[dict]:
    """Yield n enterprises with valid USCCs and adult legal representatives (kept in ``made``)."""
    if not adults:
        return
    kinds, weights = zip(*_ENTERPRISE_TYPES, strict=True)
    used: set[str] = set()
    for i in range(n):
        kind = rng.choices(kinds, weights)[0]
        county = rng.choice(counties)
        city_name = county.parent.name if county.parent and not county.parent.placeholder else county.name
        city_short = city_name.removesuffix("市")
        word = rng.choice(names.FIRM_WORDS)
        industry, scope = rng.choice(names.INDUSTRIES)
        if kind == "individual":
            name = f"{county.name}{word}{rng.choice(names.SHOPS)}"
        elif kind == "cooperative":
            crop = rng.choice(names.CROPS)
            name = f"{county.name}{word}{crop}种植专业合作社"
            scope = f"组织采购、供应成员所需的农业生产资料；{crop}的种植、收购与销售。"
        elif kind == "jsc":
            name = f"{city_short}{word}{industry}股份有限公司"
        elif kind == "partnership":
            name = f"{city_short}{word}{industry}合伙企业（有限合伙）"
        elif kind == "sole":
            name = f"{county.name}{word}{industry}个人独资企业"
        else:
            name = f"{city_short}{word}{industry}有限公司"
        name = f"{name[:-2]}{i:05d}{name[-2:]}" if name in used else name
        used.add(name)
        uscc = make_uscc("9", _USCC_ORG_TYPE.get(kind, "1"), county.code, f"{rng.randrange(36**8):08X}"[:8], serial=i)
        capital = 0 if kind == "individual" else rng.choice((10, 50, 100, 200, 500, 1000, 5000)) * 10**6
        representative = rng.choice(adults)
        established = dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(9400))
        status = rng.choices(("active", "cancelled", "revoked"), (95, 4, 1))[0]
        authority = depts.nearest("SCJG", county=county)
        enterprise = _Enterprise(str(uid()), uscc, name, kind, county, representative, established, authority, status)
        made.append(enterprise)
        yield {
            "_uid": uuid.UUID(enterprise.uid),
            "uscc": uscc,
            "name": name,
            "type": kind,
            "legal_representative": representative.uid,
            "registered_capital_fen": capital,
            "established_on": established.isoformat(),
            "status": status,
            "business_scope": scope,
            "registration_authority": authority.code,
            "address": f"{county.full_name}{rng.choice(names.STREETS)}{rng.randint(1, 600)}号",
            "division_code": county.code,
        }


def _share(rng: random.Random, items: list, share: float, *, at_least: int) -> list:
    """A deterministic sample of about ``share`` of ``items`` (at least ``at_least``), in their order."""
    count = min(len(items), max(at_least, round(len(items) * share)))
    return [items[i] for i in sorted(rng.sample(range(len(items)), count))]


def _subject(enterprise: _Enterprise) -> dict:
    """The 行政相对人 part of a 双公示 row."""
    return {
        "subject_name": enterprise.name,
        "subject_category": "individual" if enterprise.type == "individual" else "legal_person",
        "subject_uscc": enterprise.uscc,
        "subject_enterprise": enterprise.uid,
        "legal_representative": enterprise.representative.name,
        "division_code": enterprise.county.code,
    }


def _credit(
    rng: random.Random, enterprises: list[_Enterprise], depts: _Departments, uid: _Uids
) -> tuple[list[dict], list[dict], list[dict]]:
    """双公示 licences and penalties for some enterprises, and red/black list entries."""
    licences, penalties, lists = [], [], []
    active = [e for e in enterprises if e.status == "active"]
    for n, enterprise in enumerate(_share(rng, active, 0.05, at_least=5)):
        title, certificate, prefix, kinds, category, years, content = rng.choice(names.LICENCES)
        dept = depts.nearest(*kinds, county=enterprise.county)
        earliest = max(enterprise.established, TODAY - dt.timedelta(days=365 * 4))
        decided = min(earliest + dt.timedelta(days=rng.randrange(300)), TODAY - dt.timedelta(days=1))
        row = {
            "_uid": uid(),
            "decision_no": f"{enterprise.county.code}许〔{decided.year}〕{n + 1:05d}号",
            "decision_title": title,
            **_subject(enterprise),
            "licence_category": category,
            "certificate_name": certificate,
            "certificate_no": f"{prefix}{enterprise.county.code}{n + 1:08d}",
            "content": content,
            "decision_date": decided.isoformat(),
            "valid_from": decided.isoformat(),
            "authority_name": dept.name,
            "authority_uscc": dept.uscc,
            "status": "valid" if not years or _years_later(decided, years) > TODAY else "invalid",
            "source_name": dept.name,
            "source_uscc": dept.uscc,
        }
        if years:
            row["valid_until"] = (_years_later(decided, years) - dt.timedelta(days=1)).isoformat()
        licences.append(row)
    penalized: list[_Enterprise] = []
    for n, enterprise in enumerate(_share(rng, enterprises, 0.02, at_least=3)):
        violation, facts, basis, kind, category, (low, high) = rng.choice(names.PENALTIES)
        dept = depts.nearest(kind, county=enterprise.county)
        decided = TODAY - dt.timedelta(days=rng.randint(10, 900))
        fine_yuan = rng.randrange(low, high + 1, 1000) if high else 0
        row = {
            "_uid": uid(),
            "decision_no": f"{enterprise.county.code}罚〔{decided.year}〕{n + 1:05d}号",
            **_subject(enterprise),
            "violation_type": violation,
            "violation_facts": facts,
            "legal_basis": basis,
            "penalty_category": category,
            "content": f"罚款人民币{fine_yuan}元。" if fine_yuan else "警告。",
            "decision_date": decided.isoformat(),
            "publicity_until": _years_later(decided, 3).isoformat(),
            "authority_name": dept.name,
            "authority_uscc": dept.uscc,
            "source_name": dept.name,
            "source_uscc": dept.uscc,
        }
        if fine_yuan:
            row["fine_fen"] = fine_yuan * 100
        penalties.append(row)
        penalized.append(enterprise)
    red_pool = [e for e in active if e not in penalized]
    black_pool = penalized or active
    chosen = [("red", e) for e in rng.sample(red_pool, min(30, len(red_pool)))]
    chosen += [("black", e) for e in rng.sample(black_pool, min(10, len(black_pool)))]
    for n, (list_type, enterprise) in enumerate(chosen, start=1):
        _type, list_name, reason, basis, kind = rng.choice([c for c in names.CREDIT_LISTS if c[0] == list_type])
        listed = TODAY - dt.timedelta(days=rng.randint(10, 700))
        lists.append(
            {
                "_uid": uid(),
                "entry_no": f"{list_type[0].upper()}{listed.year}{n:06d}",
                "list_type": list_type,
                "list_name": list_name,
                "subject_name": enterprise.name,
                "subject_uscc": enterprise.uscc,
                "subject_enterprise": enterprise.uid,
                "reason": reason,
                "basis": basis,
                "source_department": depts.nearest(kind, county=enterprise.county).code,
                "valid_from": listed.isoformat(),
                "valid_until": _years_later(listed, 3 if list_type == "black" else 2).isoformat(),
                "status": "listed",
                "division_code": enterprise.county.code,
            }
        )
    return licences, penalties, lists


# --- Macro economy -----------------------------------------------------------------------------------------


def _quarters(count: int) -> list[tuple[str, dt.date]]:
    """The last ``count`` complete quarters before the demo's today: (period, release date)."""
    year, quarter = TODAY.year, (TODAY.month - 1) // 3  # the quarter before the current one
    out = []
    for _ in range(count):
        if quarter == 0:
            year, quarter = year - 1, 4
        end_month = quarter * 3
        release = dt.date(year + (end_month == 12), end_month % 12 + 1, 20)
        out.append((f"{year}Q{quarter}", release))
        quarter -= 1
    return out[::-1]


def _indicators(rng: random.Random, province: Division, cities: list[Division], uid: _Uids) -> list[dict]:
    """Eight quarters of economic indicators for every city and the province (统计局)."""
    rows = []
    for period, released in _quarters(8):
        for code, label, unit, kind, base, spread in names.INDICATORS:
            values = []
            for city in cities:
                city_rng = random.Random(f"{code}:{city.code}")  # a city's size is stable across quarters
                level = base * (1 + spread * (city_rng.random() * 2 - 1))
                value = level * (1 + spread * 0.1 * (rng.random() * 2 - 1))
                values.append((city, value))
            total = sum(v for _c, v in values) if kind == "sum" else sum(v for _c, v in values) / max(1, len(values))
            for division, value in [*values, (province, total)]:
                digits = 1 if unit in ("%", "亿元") else (2 if kind == "rate" and base < 1000 else 0)
                # canonical decimal text, as the engine's cleaner writes it (no exponent, no trailing zeros)
                text = format(Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits)).normalize(), "f")
                rows.append(
                    {
                        "_uid": uid(),
                        "observation_id": f"{code}:{division.code}:{period}",
                        "indicator_code": code,
                        "indicator_name": label,
                        "division_code": division.code,
                        "period": period,
                        "period_type": "quarter",
                        "value": text,
                        "unit": unit,
                        "released_on": released.isoformat(),
                    }
                )
    return rows


# --- Spatial -----------------------------------------------------------------------------------------------


def _point(lon: float, lat: float) -> dict:
    """A GeoJSON Point rounded to about a metre."""
    return {"type": "Point", "coordinates": [round(lon, 5), round(lat, 5)]}


def _square(lon: float, lat: float, half: float) -> dict:
    """A GeoJSON Polygon: the square of half-side ``half`` degrees around a point (closed ring)."""
    ring = [
        [round(lon - half, 5), round(lat - half, 5)],
        [round(lon + half, 5), round(lat - half, 5)],
        [round(lon + half, 5), round(lat + half, 5)],
        [round(lon - half, 5), round(lat + half, 5)],
        [round(lon - half, 5), round(lat - half, 5)],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def _area_km2(lat: float, half_lon: float, half_lat: float) -> str:
    """The area of a lon/lat rectangle in square kilometres (spherical approximation)."""
    width = 2 * half_lon * 111.32 * math.cos(math.radians(lat))
    height = 2 * half_lat * 110.57
    return format(Decimal(repr(width * height)).quantize(Decimal("0.1")).normalize(), "f")


class _Geography:
    """Synthetic, deterministic centroids for the province, its cities and counties."""

    def __init__(self, province: Division, cities: list[Division], counties: list[Division], seed: int):
        self.box = PROVINCE_BOXES.get(province.code[:2], CHINA_BOX)
        west, south, east, north = self.box
        self.centre: dict[str, tuple[float, float]] = {province.code: ((west + east) / 2, (south + north) / 2)}
        for city in cities:
            rng = random.Random(f"{seed}:geo:{city.code}")
            self.centre[city.code] = (rng.uniform(west + 0.4, east - 0.4), rng.uniform(south + 0.4, north - 0.4))
        for county in counties:
            rng = random.Random(f"{seed}:geo:{county.code}")
            lon, lat = self.centre.get(county.parent.code if county.parent else "", self.centre[province.code])
            self.centre[county.code] = (
                min(east, max(west, lon + rng.uniform(-0.3, 0.3))),
                min(north, max(south, lat + rng.uniform(-0.3, 0.3))),
            )

    def near(self, rng: random.Random, code: str, spread: float) -> dict:
        """A point within ``spread`` degrees of a division's centroid."""
        lon, lat = self.centre[code]
        return _point(lon + rng.uniform(-spread, spread), lat + rng.uniform(-spread, spread))


def _spatial_divisions(province: Division, cities: list[Division], counties: list[Division], uid: _Uids):
    """spatial.division rows as 民政 writes them: code, name, level, parent (geometry comes later)."""
    rows, levels = [], {1: "province", 2: "city", 3: "county"}
    for division in [province, *cities, *counties]:
        row = {
            "_uid": uid(),
            "code": division.code,
            "name": division.name,
            "level": levels[division.level],
        }
        if division.parent_id:
            row["parent_code"] = division.parent.code
        rows.append(row)
    return rows


def _geometry(geo: _Geography, province: Division, cities: list[Division], counties: list[Division]) -> dict:
    """code → centroid, boundary and area for the divisions of :func:`_spatial_divisions`."""
    out = {}
    west, south, east, north = geo.box
    lon, lat = geo.centre[province.code]
    out[province.code] = {
        "centroid": _point(lon, lat),
        "boundary": {
            "type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
        },
        "area_km2": _area_km2(lat, (east - west) / 2, (north - south) / 2),
    }
    for division, half in [*((c, 0.25) for c in cities), *((c, 0.08) for c in counties)]:
        lon, lat = geo.centre[division.code]
        out[division.code] = {
            "centroid": _point(lon, lat),
            "boundary": _square(lon, lat, half),
            "area_km2": _area_km2(lat, half, half),
        }
    return out


def _standard_addresses(rng: random.Random, population: _Population, geo: _Geography, uid: _Uids) -> list[dict]:
    """Standard addresses for a deterministic sample of household addresses (one in ten, no duplicates)."""
    rows, seen, per_village = [], set(), {}
    for index, (village, address) in enumerate(population.addresses):
        if index % 10 or address.standard in seen:
            continue
        seen.add(address.standard)
        per_village[village.code] = per_village.get(village.code, 0) + 1
        county_code = village.code[:6]
        row = {
            "_uid": uid(),
            "address_code": f"{village.code}{per_village[village.code]:04d}",
            "full_address": address.standard,
            "division_code": village.code,
            "road": address.road,
            "house_number": address.number,
            "point": geo.near(rng, county_code, 0.06) if county_code in geo.centre else None,
        }
        if address.building:
            row["building"] = address.building
        rows.append({k: v for k, v in row.items() if v is not None})
    return rows


def _pois(rng: random.Random, counties: list[Division], geo: _Geography, uid: _Uids) -> list[dict]:
    """Points of interest in every county: service centre, government, hospital, school, park, bus station."""
    rows = []
    for county in counties:
        for n, (category, pattern) in enumerate(names.POIS, start=1):
            rows.append(
                {
                    "_uid": uid(),
                    "poi_id": f"POI{county.code}{n:03d}",
                    "name": pattern.format(county=county.name),
                    "category": category,
                    "address": f"{county.full_name}{rng.choice(names.STREETS)}{rng.randint(1, 300)}号",
                    "division_code": county.code,
                    "point": geo.near(rng, county.code, 0.04),
                }
            )
    return rows


# --- E-licence index, social security, emergency -----------------------------------------------------------


def _licence_index(
    enterprises: list[_Enterprise],
    marriages: list[tuple[_Person, _Person, str, dt.date, bool]],
    depts: _Departments,
    counties: dict[str, Division],
    uid: _Uids,
) -> list[dict]:
    """Index entries for business licences (营业执照) and marriage certificates (结婚证)."""
    rows = []
    for n, enterprise in enumerate([e for e in enterprises if e.status == "active"][:300], start=1):
        rows.append(
            {
                "_uid": uid(),
                "licence_id": f"YYZZ-{enterprise.county.code}-{n:08d}",
                "type_code": "YYZZ",
                "type_name": "营业执照",
                "licence_no": enterprise.uscc,
                "holder_name": enterprise.name,
                "holder_uscc": enterprise.uscc,
                "issuer": enterprise.authority.name,
                "issuer_code": enterprise.authority.uscc,
                "issued_on": enterprise.established.isoformat(),
                "valid_from": enterprise.established.isoformat(),
                "status": "valid",
                "division_code": enterprise.county.code,
            }
        )
    serial = 0
    for first, second, number, date, divorced in marriages:
        registrar = depts.nearest("MZ", county=counties[first.county])
        for holder in (first, second):
            serial += 1
            rows.append(
                {
                    "_uid": uid(),
                    "licence_id": f"JHZ-{first.county}-{serial:08d}",
                    "type_code": "JHZ",
                    "type_name": "结婚证",
                    "licence_no": number,
                    "holder_name": holder.name,
                    "holder_id_number": holder.id_number,
                    "issuer": registrar.name,
                    "issuer_code": registrar.uscc,
                    "issued_on": date.isoformat(),
                    "valid_from": date.isoformat(),
                    "status": "revoked" if divorced else "valid",  # a divorce ends the marriage certificate
                    "division_code": first.county,
                }
            )
    return rows


def _insured(rng: random.Random, people: list[_Person], enterprises: list[_Enterprise], uid: _Uids) -> Iterator[dict]:
    """Social insurance enrolments (人社) for a share of adults: pensions, and unemployment for employees."""
    employers = [e for e in enterprises if e.status == "active" and e.type != "individual"]
    serial = 0
    for person in people:
        age = _age(person.birth)
        if person.status != "normal" or age < 18 or rng.random() >= 0.2:
            continue
        enrolments = []
        if age >= 60:
            enrolments.append(("pension_employee" if rng.random() < 0.5 else "pension_resident", "receiving", None))
        elif employers and rng.random() < 0.6:
            employer = rng.choice(employers)
            base = rng.randrange(4000, 15000, 100) * 100
            enrolments.append(("pension_employee", "contributing", (employer, base)))
            if rng.random() < 0.7:
                enrolments.append(("unemployment", "contributing", (employer, base)))
        else:
            enrolments.append(("pension_resident", rng.choice(("contributing", "contributing", "suspended")), None))
        for insurance, status, employment in enrolments:
            serial += 1
            started = max(_years_later(person.birth, 18) + dt.timedelta(days=rng.randrange(3000)), dt.date(1998, 1, 1))
            row = {
                "_uid": uid(),
                "enrolment_no": f"{person.county}{serial:010d}",
                "person": person.uid,
                "id_number": person.id_number,
                "name": person.name,
                "insurance_type": insurance,
                "status": status,
                "start_date": min(started, TODAY).isoformat(),
                "division_code": person.county,
            }
            if employment is not None:
                employer, base = employment
                row["employer_uscc"] = employer.uscc
                row["contribution_base_fen"] = base
            yield row


def _emergency(
    rng: random.Random, counties: list[Division], depts: _Departments, geo: _Geography, uid: _Uids
) -> list[dict]:
    """Shelters, warehouses, supplies and rescue teams in every county (应急)."""
    rows = []
    for county in counties:
        owner = depts.nearest("YJ", county=county)
        for n, (kind, pattern, category, (low, high), unit) in enumerate(names.EMERGENCY_RESOURCES, start=1):
            rows.append(
                {
                    "_uid": uid(),
                    "resource_code": f"YJ{county.code}{n:03d}",
                    "name": pattern.format(county=county.name),
                    "kind": kind,
                    "category": category,
                    "division_code": county.code,
                    "address": f"{county.full_name}{rng.choice(names.STREETS)}{rng.randint(1, 300)}号",
                    "location": geo.near(rng, county.code, 0.05),
                    "capacity": rng.randint(low, high),
                    "capacity_unit": unit,
                    "owner_department": owner.code,
                    "contact_phone": f"{rng.randint(60000000, 89999999)}",
                    "status": rng.choices(("available", "maintenance"), (9, 1))[0],
                    "checked_on": (TODAY - dt.timedelta(days=rng.randint(5, 180))).isoformat(),
                }
            )
    return rows


# --- Accounts ----------------------------------------------------------------------------------------------


def _ensure_officials(rng: random.Random, orgs: list[Organization]) -> int:
    """Create the fixed demo accounts and two officials per department (one shared password hash)."""
    password = make_password(DEMO_PASSWORD)  # hashed once: argon2 is deliberately slow
    by_suffix = {o.code.rsplit("-", 1)[-1]: o for o in orgs if o.level == Organization.Level.PROVINCE}
    users = []
    for username, kind, display, dept, staff, superuser, _role in DEMO_ACCOUNTS:
        users.append(
            User(
                username=username,
                kind=kind,
                display_name=display,
                department=by_suffix.get(dept) if dept else None,
                is_staff=staff,
                is_superuser=superuser,
                password=password,
            )
        )
    for org in orgs:
        for n in (1, 2):
            sex = rng.choice((MALE, FEMALE))
            users.append(
                User(
                    username=f"{org.code.lower().replace('-', '_')}_{n}",
                    kind=User.Kind.OFFICIAL,
                    display_name=_weighted_surname(rng) + _given_name(rng, sex),
                    department=org,
                    password=password,
                )
            )
    User.objects.bulk_create(users, batch_size=BATCH)
    for user in users[: len(DEMO_ACCOUNTS)]:
        user.phone = DEMO_PHONES.get(user.username, "")
        user.save(update_fields=["phone"])
    identity_services.provision_totp(
        [u for u in users if identity_services.mfa_required(u)], DEMO_TOTP_SECRET, actor=DEMO_ACTOR
    )
    return len(users)


def ensure_demo_clients(province_code: str | None = None) -> list[str]:
    """Register the demo's OIDC clients that are missing (idempotent); return the client_ids registered now.

    A client whose id exists is left as it is, even if an administrator changed or deactivated it.
    The secrets of the confidential clients are generated and dropped, never printed: to try one,
    an administrator rotates its secret (`dgov oidc client rotate CLIENT_ID` or the workbench),
    which shows the new one once. ``province_code`` defaults to the seeded demo province.
    """
    from dgov.oidc.services import clients

    if province_code is None:
        dataset = DemoDataset.objects.order_by("pk").first()
        province_code = dataset.province_code if dataset is not None else None
    made = []
    with transaction.atomic():
        for spec in DEMO_OIDC_CLIENTS:
            values = dict(spec)
            kind = values.pop("department")
            if clients.client_exists(values["client_id"]):
                continue
            department = Organization.objects.filter(
                division__code=province_code, level=Organization.Level.PROVINCE, kind=kind, is_active=True
            ).first()
            if department is None:
                continue  # a province without that department: nothing to attach the client to
            clients.create_client(organization=department, actor=DEMO_ACTOR, **values)
            made.append(values["client_id"])
    return made


# --- The whole province -----------------------------------------------------------------------------------


DEMO_READS = (
    ("GA", "户籍信息核验 household registration check"),
    ("WJ", "出生医学证明签发核对 birth certificate check"),
    ("DSJ", "一网通办申请材料免提交 one-stop application, documents not resubmitted"),
)


def _verify_demo_accounts(made: list[_Enterprise], adults: list[_Person], depts: _Departments) -> None:
    """Verify the demo citizen and enterprise agent (real-name level 2) against the demo libraries.

    The citizen becomes an adult who represents no enterprise; the agent the legal representative
    of the first active enterprise, then that enterprise. A few departments read the citizen's
    record, so 实名认证 and 谁查了我的数据 (/account/reads/) show real data on the first start.
    """
    from dgov.identity import realname

    accounts = {user.username: user for user in User.objects.filter(username__in=("citizen", "enterprise"))}
    representatives = {enterprise.representative.id_number for enterprise in made}
    person = next((p for p in adults if p.id_number not in representatives), None)
    company = next((e for e in made if e.status == "active" and e.representative.status == "normal"), None)
    if "citizen" in accounts and person is not None:
        realname.verify_person(accounts["citizen"], person.name, person.id_number, actor=DEMO_ACTOR)
        record = services.find_record(services.get_registry("population.person"), "id_number", person.id_number)
        for kind, purpose in DEMO_READS:
            services.read_record(record, actor=depts.provincial(kind), purpose=purpose, channel="api")
    if "enterprise" in accounts and company is not None:
        agent, representative = accounts["enterprise"], company.representative
        realname.verify_person(agent, representative.name, representative.id_number, actor=DEMO_ACTOR)
        realname.verify_enterprise(agent, company.uscc, actor=DEMO_ACTOR)
        if "citizen" in accounts and person is not None:
            _demo_agency(accounts["enterprise"], accounts["citizen"], person)


def _demo_agency(enterprise: User, citizen: User, person: _Person) -> None:
    """Make the demo citizen the demo enterprise's agent (经办人) for a year, unless they already are."""
    from dgov.identity import agents

    if any(agency.enterprise_id == enterprise.pk for agency in agents.agencies_of(citizen)):
        return
    agents.grant_agency(
        enterprise,
        name=person.name,
        id_number=person.id_number,
        scopes=list(agents.AGENT_SCOPES),
        valid_until=dt.datetime.now(dt.UTC) + dt.timedelta(days=agents.agent_max_days()),
        actor=DEMO_ACTOR,
    )


def generate(
    *,
    province_code: str,
    persons: int,
    enterprises: int,
    seed: int = 20261128,
    progress: Callable[[str, int], None] | None = None,
    start_step: Callable[[str, int], None] | None = None,
) -> DemoReport:
    """Generate the demo province in one transaction (all or nothing) and return what was made."""
    progress = progress or (lambda step, n: None)
    start_step = start_step or (lambda step, total: None)
    rng = random.Random(seed)
    report = DemoReport()
    write = _writer(report, progress)
    uid = _Uids(seed)
    began = time.perf_counter()

    def lap(step: str, t0: float) -> float:
        now = time.perf_counter()
        report.seconds[step] = round(now - t0, 2)
        return now

    t = began
    start_step("divisions", 1)
    # Divisions are idempotent reference data, loaded outside the all-or-nothing transaction below.
    report.divisions = divisions.load_divisions().total
    subdivisions = divisions.generate_demo_subdivisions(province_code, seed)
    report.divisions += subdivisions.townships + subdivisions.villages
    progress("divisions", 1)
    t = lap("divisions", t)
    with transaction.atomic():
        start_step("organizations", 1)
        orgs = organizations.generate_demo_organizations(province_code, seed, actor=DEMO_ACTOR)
        report.organizations = len(orgs)
        report.officials = _ensure_officials(rng, orgs)
        report.oidc_clients = len(ensure_demo_clients(province_code))
        progress("organizations", 1)
        t = lap("organizations", t)

        start_step("libraries", 1)
        installed = libraries.install_libraries(actor=DEMO_ACTOR, province_code=province_code)
        report.registries = len(installed.created) + len(installed.upgraded) + len(installed.unchanged)
        progress("libraries", 1)
        t = lap("libraries", t)

        province = Division.objects.get(code=province_code)
        prefix = province_code[:2]
        cities = list(
            Division.objects.filter(
                level=Division.Level.CITY, code__startswith=prefix, placeholder=False, is_current=True
            ).order_by("code")
        )
        counties = list(
            Division.objects.filter(
                level=Division.Level.COUNTY, code__startswith=prefix, placeholder=False, is_current=True
            )
            .select_related("parent")
            .order_by("code")
        )
        villages = list(
            Division.objects.filter(level=Division.Level.VILLAGE, code__startswith=prefix)
            .select_related("parent__parent__parent")
            .order_by("code")
        )
        if not villages:
            raise RuntimeError(f"no village-level divisions for {province_code}: subdivisions were not generated")
        county_by_code = {c.code: c for c in counties}
        for village in villages:  # villages carry their county object, so persons need no lookups
            county_by_code.setdefault(village.parent.parent.code, village.parent.parent)
        depts = _Departments(orgs, province_code)
        factory = _PersonFactory(random.Random(seed + 1), counties)

        start_step("persons", persons)
        population = _Population()
        report.persons = write(
            "population.person",
            _persons(random.Random(seed + 2), factory, villages, persons, uid, population),
            depts.provincial("GA"),
            "persons",
        )
        start_step("households", len(population.households))
        report.households = write("population.household", population.households, depts.provincial("GA"), "households")
        t = lap("persons", t)

        births, deaths, civil, marriages = _events(random.Random(seed + 4), population, depts, county_by_code, uid)
        start_step("events", len(births) + len(deaths) + len(civil))
        write("population.event", births, depts.provincial("WJ"), "events")
        write("population.event", deaths, depts.provincial("WJ"), "events")
        write("population.event", civil, depts.provincial("MZ"), "events")
        t = lap("events", t)

        start_step("enterprises", enterprises)
        adults = [p for p in population.people if p.status == "normal" and _age(p.birth) >= 20]
        made: list[_Enterprise] = []
        report.enterprises = write(
            "legal_entity.enterprise",
            _enterprises(random.Random(seed + 3), enterprises, counties, adults, depts, uid, made),
            depts.provincial("SCJG"),
            "enterprises",
        )
        t = lap("enterprises", t)

        licences, penalties, lists = _credit(random.Random(seed + 5), made, depts, uid)
        start_step("credit", len(licences) + len(penalties) + len(lists))
        write("credit.licence", licences, depts.provincial("FGW"), "credit")
        write("credit.penalty", penalties, depts.provincial("FGW"), "credit")
        write("credit.list", lists, depts.provincial("FGW"), "credit")
        indicators = _indicators(random.Random(seed + 6), province, cities, uid)
        start_step("macro", len(indicators))
        write("macro.indicator", indicators, depts.provincial("TJ"), "macro")
        t = lap("credit_macro", t)

        geo = _Geography(province, cities, counties, seed)
        spatial_rng = random.Random(seed + 7)
        division_rows = _spatial_divisions(province, cities, counties, uid)
        addresses = _standard_addresses(spatial_rng, population, geo, uid)
        pois = _pois(spatial_rng, counties, geo, uid)
        start_step("spatial", 2 * len(division_rows) + len(addresses) + len(pois))
        write("spatial.division", division_rows, depts.provincial("MZ"), "spatial")
        geometry = _geometry(geo, province, cities, counties)
        _write_geometry(division_rows, geometry, depts.provincial("ZRZY"), progress)
        write("spatial.address", addresses, depts.provincial("ZRZY"), "spatial")
        write("spatial.poi", pois, depts.provincial("ZRZY"), "spatial")
        t = lap("spatial", t)

        index_rows = _licence_index(made, marriages, depts, county_by_code, uid)
        emergency = _emergency(random.Random(seed + 9), counties, depts, geo, uid)
        start_step("index+themes", len(index_rows) + len(emergency) + len(adults) // 5)
        write("licence.index", index_rows, depts.provincial("DSJ"), "index+themes")
        write(
            "social_security.insured",
            _insured(random.Random(seed + 8), population.people, made, uid),
            depts.provincial("RS"),
            "index+themes",
        )
        write("emergency.resource", emergency, depts.provincial("YJ"), "index+themes")
        _verify_demo_accounts(made, adults, depts)
        t = lap("index+themes", t)

        dataset = DemoDataset.objects.create(
            province_code=province.code,
            seed=seed,
            persons=report.persons,
            enterprises=report.enterprises,
            officials=report.officials,
            seconds=round(time.perf_counter() - began, 2),
        )
        audit.record(
            "registry.demo.generate",
            actor=DEMO_ACTOR,
            target=dataset,
            detail={
                "province": province.code,
                "seed": seed,
                "households": report.households,
                "persons": report.persons,
                "enterprises": report.enterprises,
                "organizations": report.organizations,
                "officials": report.officials,
                "records": report.records,
            },
        )
    report.seconds["total"] = round(time.perf_counter() - began, 2)
    return report


def _write_geometry(
    rows: list[dict], geometry: dict[str, dict], source: Organization, progress: Callable[[str, int], None]
) -> None:
    """自然资源 adds centroids and boundaries to the division records 民政 created (a second source)."""
    uid_of = {row["code"]: row["_uid"] for row in rows}
    records = {
        record.uid: record
        for record in Record.objects.filter(uid__in=list(uid_of.values())).select_related("registry__owner")
    }
    for code, values in geometry.items():
        services.update_record(
            records[uid_of[code]], values, actor=DEMO_ACTOR, source=source, reason="演示数据：区划中心点与边界"
        )
        progress("spatial", 1)
