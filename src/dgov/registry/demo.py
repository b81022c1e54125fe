"""The demo province: a deterministic synthetic province generated from a seed.

`dgov demo` builds, in order: the GB/T 2260 divisions (plus synthetic townships and villages
for the demo province), a realistic set of departments, officials with demo logins, persons in
households with valid ID numbers and addresses in real division codes, and enterprises with
valid USCCs whose legal representatives are drawn from the persons.

Determinism: the same seed and sizes give the same names, ID numbers, households and USCCs
(ciphertexts differ because SM4-GCM nonces are random, by design). Everything is fictitious.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth.hashers import make_password
from django.db import transaction

from dgov.identity.models import User
from dgov.kernel.fields import blind_index
from dgov.kernel.models import Division, Organization
from dgov.kernel.services import audit, divisions, organizations
from dgov.kernel.validators import make_resident_id, make_uscc
from dgov.registry import demo_names as names
from dgov.registry.models import DemoDataset, Enterprise, Household, Person

DEMO_PASSWORD = "dgov-demo-2026"  # noqa: S105 - published demo credential, embedded mode only
DEMO_ACTOR = "system:demo"
BATCH = 2000

# Fixed demo accounts: (username, kind, display name, department code suffix or None, staff, superuser, role)
DEMO_ACCOUNTS = (
    ("admin", User.Kind.ADMIN, "系统管理员", None, True, True, "平台管理员 platform administrator"),
    ("dsj_admin", User.Kind.OFFICIAL, "省大数据局管理员", "DSJ", True, False, "数据管理员 data administrator"),
    ("zwfw_window", User.Kind.OFFICIAL, "省政务服务窗口", "ZWFW", False, False, "窗口人员 window official"),
    ("gat_official", User.Kind.OFFICIAL, "省公安厅工作人员", "GAT", False, False, "部门工作人员 department official"),
    ("citizen", User.Kind.PERSON, "", None, False, False, "办事群众 citizen"),
    ("enterprise", User.Kind.ENTERPRISE, "", None, False, False, "企业经办人 enterprise agent"),
)


@dataclass
class DemoReport:
    """What `generate` produced and how long each step took."""

    divisions: int = 0
    organizations: int = 0
    officials: int = 0
    households: int = 0
    persons: int = 0
    enterprises: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def is_seeded(province_code: str | None = None) -> bool:
    """True when the demo province has been generated in this database."""
    qs = DemoDataset.objects.all()
    return (qs.filter(province_code=province_code) if province_code else qs).exists()


def demo_logins() -> list[dict[str, str]]:
    """The demo accounts with their password and role, for `make run` to print."""
    if not is_seeded():
        return []
    return [
        {"username": username, "password": DEMO_PASSWORD, "role": role}
        for username, *_rest, role in DEMO_ACCOUNTS
        if User.objects.filter(username=username).exists()
    ]


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
    pool = names.GIVEN_MALE if sex == Person.Sex.MALE else names.GIVEN_FEMALE
    first = rng.choice(pool if rng.random() < 0.8 else names.GIVEN_NEUTRAL)
    return first if rng.random() < 0.3 else first + rng.choice(pool)


class _PersonFactory:
    """Makes persons with unique, valid ID numbers for the demo province."""

    def __init__(self, rng: random.Random, counties: list[Division], today: dt.date):
        self.rng = rng
        self.counties = counties
        self.today = today
        self.used: set[tuple[str, dt.date, int]] = set()

    def id_number(self, region: str, birth: dt.date, sex: str) -> str:
        """A unique ID number: region + birth date + sequence (odd for men) + check digit."""
        rng = self.rng
        for _ in range(1000):
            seq = rng.randrange(0, 500) * 2 + (1 if sex == Person.Sex.MALE else 0)
            key = (region, birth, seq)
            if key not in self.used:
                self.used.add(key)
                return make_resident_id(region, birth, seq)
        raise RuntimeError("demo ID sequence space exhausted")  # pragma: no cover - 500 per day and region

    def birth(self, min_age: int, max_age: int) -> dt.date:
        """A birth date for an age in [min_age, max_age] years."""
        days = self.rng.randint(min_age * 365 + 1, max_age * 365 + 364)
        return self.today - dt.timedelta(days=days)

    def make(self, *, surname: str | None, sex: str, birth: dt.date, home: Division, address: str) -> Person:
        """A Person (unsaved) living in `home` (a village), born in its county or elsewhere."""
        rng = self.rng
        county = home.parent.parent if home.level == Division.Level.VILLAGE else home
        birth_region = county.code if rng.random() < 0.85 else rng.choice(self.counties).code
        id_number = self.id_number(birth_region, birth, sex)
        phone = "1" + rng.choice("3578") + f"{rng.randrange(10**9):09d}" if birth.year < self.today.year - 12 else ""
        return Person(
            name=(surname or _weighted_surname(rng)) + _given_name(rng, sex),
            id_number=id_number,
            id_number_index=blind_index(id_number, purpose="id_number"),
            sex=sex,
            birth_date=birth,
            ethnicity=rng.choice(names.ETHNICITIES),
            phone=phone,
            phone_index=blind_index(phone, purpose="phone") if phone else "",
            address=address,
            division=home,
        )


def _address(rng: random.Random, village: Division) -> str:
    """A street address inside a (synthetic) village or community."""
    if village.name.endswith("社区"):
        street = rng.choice(names.STREETS)
        return (
            f"{village.full_name}{street}{rng.randint(1, 399)}号"
            f"{rng.randint(1, 12)}号楼{rng.randint(1, 4)}单元{rng.randint(1, 18)}{rng.randint(1, 4):02d}室"
        )
    return f"{village.full_name}{rng.choice(names.VILLAGE_ROADS)}{rng.randint(1, 199)}号"


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
            sex = rng.choice(Person.Sex.values)
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
    return len(users)


def _households_and_persons(
    rng: random.Random,
    factory: _PersonFactory,
    villages: list[Division],
    n_persons: int,
    source: Organization,
    progress: Callable[[str, int], None],
) -> tuple[int, int]:
    """Generate households of 1–6 members until n_persons persons exist; returns (households, persons)."""
    made = households = 0
    today = factory.today
    while made < n_persons:
        batch_households: list[Household] = []
        batch_members: list[list[Person]] = []
        while made < n_persons and len(batch_households) < BATCH // 3:
            village = rng.choice(villages)
            address = _address(rng, village)
            surname = _weighted_surname(rng)
            head_sex = Person.Sex.MALE if rng.random() < 0.7 else Person.Sex.FEMALE
            head_birth = factory.birth(22, 85)
            members = [factory.make(surname=surname, sex=head_sex, birth=head_birth, home=village, address=address)]
            members[0].relation = Person.Relation.HEAD
            head_age = (today - head_birth).days // 365
            if rng.random() < 0.75 and made + len(members) < n_persons:
                other = Person.Sex.FEMALE if head_sex == Person.Sex.MALE else Person.Sex.MALE
                age = max(20, min(90, head_age + rng.randint(-5, 5)))
                spouse = factory.make(surname=None, sex=other, birth=factory.birth(age, age), home=village,
                                      address=address)
                spouse.relation = Person.Relation.SPOUSE
                members.append(spouse)
            for _ in range(rng.choice((0, 1, 1, 2, 2, 3)) if head_age < 65 else 0):
                if made + len(members) >= n_persons or head_age < 23:
                    break
                age = rng.randint(0, min(head_age - 21, 40))
                child = factory.make(surname=surname, sex=rng.choice(Person.Sex.values),
                                     birth=factory.birth(age, age), home=village, address=address)
                child.relation = Person.Relation.CHILD
                members.append(child)
            if head_age < 50 and rng.random() < 0.15 and made + len(members) < n_persons:
                age = min(95, head_age + rng.randint(24, 32))
                elder = factory.make(surname=surname, sex=rng.choice(Person.Sex.values),
                                     birth=factory.birth(age, age), home=village, address=address)
                elder.relation = Person.Relation.PARENT
                members.append(elder)
            households += 1
            batch_households.append(
                Household(
                    household_no=f"{village.code[:6]}{households:010d}",
                    division=village,
                    address=address,
                    registered_on=head_birth + dt.timedelta(days=365 * 22 + rng.randrange(3000)),
                    source=source,
                )
            )
            batch_members.append(members)
            made += len(members)
        Household.objects.bulk_create(batch_households)
        persons = []
        for household, members in zip(batch_households, batch_members, strict=True):
            household.registered_on = min(household.registered_on, today)
            for p in members:
                p.household = household
                p.source = source
                persons.append(p)
        Person.objects.bulk_create(persons, batch_size=BATCH)
        progress("persons", len(persons))
    return households, made


def _enterprises(
    rng: random.Random,
    n: int,
    counties: list[Division],
    authorities: dict[str, Organization],
    fallback_authority: Organization,
    progress: Callable[[str, int], None],
) -> int:
    """Generate n enterprises with valid USCCs and adult legal representatives."""
    person_ids = list(Person.objects.filter(birth_date__lte=dt.date.today() - dt.timedelta(days=365 * 20))
                      .order_by("pk").values_list("pk", flat=True))
    if not person_ids or n <= 0:
        return 0
    types = [
        (Enterprise.Type.LLC, 50), (Enterprise.Type.INDIVIDUAL, 25), (Enterprise.Type.JSC, 5),
        (Enterprise.Type.SOLE, 8), (Enterprise.Type.PARTNERSHIP, 4), (Enterprise.Type.COOPERATIVE, 8),
    ]
    # GB 32100 registration authority 9 (market regulation) and organisation type per kind of entity;
    # farmers' cooperatives are registered by the same authority with type 3.
    org_type = {Enterprise.Type.INDIVIDUAL: "2", Enterprise.Type.COOPERATIVE: "3"}
    kinds, weights = zip(*types, strict=True)
    used: set[str] = set()
    batch: list[Enterprise] = []
    made = 0
    for i in range(n):
        kind = rng.choices(kinds, weights)[0]
        county = rng.choice(counties)
        city_name = county.parent.name if county.parent and county.parent.name != "市辖区" else county.name
        city_short = city_name.removesuffix("市")
        word = rng.choice(names.FIRM_WORDS)
        industry, scope = rng.choice(names.INDUSTRIES)
        if kind == Enterprise.Type.INDIVIDUAL:
            name = f"{county.name}{word}{rng.choice(names.SHOPS)}"
        elif kind == Enterprise.Type.COOPERATIVE:
            crop = rng.choice(names.CROPS)
            name = f"{county.name}{word}{crop}种植专业合作社"
            scope = f"组织采购、供应成员所需的农业生产资料；{crop}的种植、收购与销售。"
        elif kind == Enterprise.Type.JSC:
            name = f"{city_short}{word}{industry}股份有限公司"
        elif kind == Enterprise.Type.PARTNERSHIP:
            name = f"{city_short}{word}{industry}合伙企业（有限合伙）"
        elif kind == Enterprise.Type.SOLE:
            name = f"{county.name}{word}{industry}个人独资企业"
        else:
            name = f"{city_short}{word}{industry}有限公司"
        name = f"{name[:-2]}{i:05d}{name[-2:]}" if name in used else name
        used.add(name)
        uscc = make_uscc("9", org_type.get(kind, "1"), county.code, f"{rng.randrange(36**8):08X}"[:8], serial=i)
        capital = 0 if kind == Enterprise.Type.INDIVIDUAL else rng.choice((10, 50, 100, 200, 500, 1000, 5000)) * 10**6
        batch.append(
            Enterprise(
                uscc=uscc,
                name=name,
                type=kind,
                legal_representative_id=rng.choice(person_ids),
                registered_capital_fen=capital,
                established_on=dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(9400)),
                division=county,
                address=f"{county.full_name}{rng.choice(names.STREETS)}{rng.randint(1, 600)}号",
                business_scope=scope,
                registration_authority=authorities.get(county.code, fallback_authority),
            )
        )
        if len(batch) >= BATCH:
            Enterprise.objects.bulk_create(batch)
            made += len(batch)
            progress("enterprises", len(batch))
            batch = []
    if batch:
        Enterprise.objects.bulk_create(batch)
        made += len(batch)
        progress("enterprises", len(batch))
    return made


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
        progress("organizations", 1)
        t = lap("organizations", t)

        province = Division.objects.get(code=province_code)
        counties = list(
            Division.objects.filter(level=Division.Level.COUNTY, code__startswith=province_code[:2])
            .select_related("parent").order_by("code")
        )
        villages = list(
            Division.objects.filter(level=Division.Level.VILLAGE, code__startswith=province_code[:2])
            .select_related("parent__parent").order_by("code")
        )
        if not villages:
            raise RuntimeError(f"no village-level divisions for {province_code}: subdivisions were not generated")
        police = next(o for o in orgs if o.code.endswith("-GAT"))
        market = {
            o.division.code: o for o in orgs if o.code.endswith("-SCJG") and o.level == Organization.Level.COUNTY
        }
        market_province = next(o for o in orgs if o.code.endswith("-SCJGJ") or o.code.endswith("-SCJG"))
        factory = _PersonFactory(random.Random(seed + 1), counties, dt.date(2026, 11, 1))

        start_step("persons", persons)
        report.households, report.persons = _households_and_persons(
            random.Random(seed + 2), factory, villages, persons, police, progress
        )
        t = lap("persons", t)
        start_step("enterprises", enterprises)
        report.enterprises = _enterprises(
            random.Random(seed + 3), enterprises, counties, market, market_province, progress
        )
        t = lap("enterprises", t)
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
            },
        )
    report.seconds["total"] = round(time.perf_counter() - began, 2)
    return report
