"""Demo e-licences (`dgov demo`): the demo catalogue and a few licences of each type (idempotent).

Loads ``data/types.yaml`` (营业执照, 食品经营许可证, 结婚证, 出生医学证明, 机动车驾驶证, 社会保障卡) and,
once, issues a handful of licences of each type to demo persons (``population.person``) and
enterprises (``legal_entity.enterprise``), each by the department of the type's issuing kind
nearest to the holder (county, else city, else province), through bulk issuance — so the
credentials are signed, the status entries allocated and the e-licence base library filled like
any other issuance. Kept small (about forty licences) so `dgov demo` stays quick.
"""

from __future__ import annotations

import datetime
import random
from collections import defaultdict

from dgov.kernel.models import Organization
from dgov.kernel.services import audit
from dgov.kernel.services.organizations import find_department
from dgov.licenses import catalogue, services
from dgov.licenses.models import Licence, LicenceType
from dgov.registry import services as registry_services
from dgov.registry.models import Record

SOURCE = "demo"
PER_TYPE = 5
SCAN = 3000  # person records looked at (their public fields only) to pick holders


def _registry(code: str):
    """An installed registry, or None."""
    try:
        return registry_services.get_registry(code)
    except registry_services.RegistryNotFound:
        return None


def _issuer(kind: str, division_code: str, province_code: str, cache: dict) -> Organization | None:
    """The department of ``kind`` nearest to a division: at the county, else the city, else the province."""
    for code in (division_code, division_code[:4] + "00", province_code):
        key = (code, kind)
        if key not in cache:
            cache[key] = find_department(code, kind)
        if cache[key] is not None:
            return cache[key]
    return None


def _persons(limit: int) -> list[dict]:
    """Normal persons' values from the population library: adults and the youngest (only those decrypted)."""
    registry = _registry("population.person")
    if registry is None:
        return []
    rows = list(
        Record.objects.filter(registry=registry, deleted_at__isnull=True)
        .order_by("id")
        .values("id", "data", "division_code")[:SCAN]
    )
    rows = [row for row in rows if (row["data"] or {}).get("status") == "normal" and row["data"].get("birth_date")]
    youngest = sorted(rows, key=lambda row: row["data"]["birth_date"], reverse=True)[:PER_TYPE]
    adults = [row for row in rows if row["data"]["birth_date"] <= "2004-01-01"][:limit]
    chosen = {row["id"]: row for row in adults + youngest}
    records = Record.objects.filter(pk__in=list(chosen)).order_by("id")
    people = []
    young = {row["id"] for row in youngest}
    for record in records:
        values = registry_services.record_values_now(record)
        if not values.get("id_number") or not values.get("name"):
            continue
        people.append({**values, "division_code": record.division_code, "young": record.pk in young})
    return people


def _enterprises(limit: int) -> list[dict]:
    """Active enterprises' values from the legal-entity library."""
    registry = _registry("legal_entity.enterprise")
    if registry is None:
        return []
    found = []
    for record in Record.objects.filter(registry=registry, deleted_at__isnull=True).order_by("id")[: limit * 4]:
        values = registry_services.record_values_now(record)
        if values.get("status") == "active" and values.get("uscc") and values.get("name"):
            found.append({**values, "division_code": record.division_code})
        if len(found) >= limit:
            break
    return found


ENTITY_TYPES = {
    "llc": "有限责任公司",
    "jsc": "股份有限公司",
    "individual": "个体工商户",
    "sole": "个人独资企业",
    "partnership": "合伙企业",
    "cooperative": "农民专业合作社",
    "branch": "分支机构",
}


def _holder(person: dict, data: dict) -> dict:
    """An issue_many row for a person holder."""
    return {"holder_name": person["name"], "holder_id": person["id_number"], "data": data}


def _plans(types: dict[str, LicenceType], people: list[dict], enterprises: list[dict], rng: random.Random):
    """(type, holder division, row) for every demo licence."""
    adults = [p for p in people if not p["young"]]
    young = [p for p in people if p["young"]]
    names = [p["name"] for p in people] or ["王芳"]
    plans = []
    licence = types.get("营业执照")
    for enterprise in enterprises[:PER_TYPE] if licence else []:
        capital = enterprise.get("registered_capital_fen") or 0
        data = {
            "entity_type": ENTITY_TYPES.get(enterprise.get("type"), "有限责任公司"),
            "legal_representative": rng.choice(names),
            "registered_capital": f"{int(capital) / 1_000_000:.2f}",
            "established_on": enterprise.get("established_on") or "2020-01-01",
            "address": (enterprise.get("address") or "山东省济南市历下区")[:200],
            "business_scope": enterprise.get("business_scope") or "一般项目：技术服务、技术开发、技术咨询。",
        }
        row = {"holder_name": enterprise["name"], "holder_id": enterprise["uscc"], "number": enterprise["uscc"]}
        plans.append((licence, enterprise["division_code"], {**row, "data": data}))
    licence = types.get("食品经营许可证")
    for enterprise in enterprises[PER_TYPE : PER_TYPE * 2] if licence else []:
        data = {
            "legal_representative": rng.choice(names),
            "premises": (enterprise.get("address") or "山东省济南市历下区")[:200],
            "main_business": rng.choice(["retail", "catering", "canteen"]),
            "business_items": "预包装食品（含冷藏冷冻食品）销售；热食类食品制售",
        }
        row = {"holder_name": enterprise["name"], "holder_id": enterprise["uscc"], "data": data}
        plans.append((licence, enterprise["division_code"], row))
    licence = types.get("结婚证")
    couples = list(zip(adults[0:6:2], adults[1:6:2], strict=False)) if licence else []
    for first, second in couples:
        registered = (datetime.date(2015, 1, 1) + datetime.timedelta(days=rng.randrange(3650))).isoformat()
        for holder, spouse in ((first, second), (second, first)):
            data = {"spouse_name": spouse["name"], "spouse_id_number": spouse["id_number"], "registered_on": registered}
            plans.append(
                (
                    licence,
                    first["division_code"],
                    _holder(holder, data),
                )
            )
    licence = types.get("出生医学证明")
    for child in young if licence else []:
        born = child.get("birth_date") or "2024-01-01"
        data = {
            "born_at": born,
            "sex": child.get("sex") if child.get("sex") in ("1", "2") else "1",
            "birth_weight_g": rng.randrange(2600, 4200),
            "birthplace": "山东省济南市",
            "mother_name": rng.choice(names),
            "institution": "济南市妇幼保健院",
        }
        row = {"holder_name": child["name"], "holder_id": child["id_number"], "valid_from": born, "data": data}
        plans.append((licence, child["division_code"], row))
    licence = types.get("机动车驾驶证")
    for person in adults[6 : 6 + PER_TYPE] if licence else []:
        first = (datetime.date(2012, 1, 1) + datetime.timedelta(days=rng.randrange(3000))).isoformat()
        data = {"vehicle_class": rng.choice(["C1", "C1", "C2", "B2", "A2"]), "first_issued_on": first}
        plans.append(
            (
                licence,
                person["division_code"],
                _holder(person, data),
            )
        )
    licence = types.get("社会保障卡")
    for n, person in enumerate(adults[11 : 11 + PER_TYPE] if licence else [], start=1):
        data = {"card_no": f"J{person['division_code'][:6]}{n:08d}", "bank": "中国工商银行", "issued_in": "山东省"}
        plans.append(
            (
                licence,
                person["division_code"],
                _holder(person, data),
            )
        )
    return plans


def seed(*, province_code: str, seed: int = 0) -> str:
    """Load the demo catalogue and, once, issue the demo licences; returns a one-line summary."""
    actor = audit.cli_actor()
    entries = catalogue.read_type_file(catalogue.DEMO_TYPES)
    report = catalogue.load_types(entries, actor=actor, source=catalogue.DEMO_TYPES.name, province_code=province_code)
    if not report.ok:
        return "电子证照：" + report.to_text()
    if Licence.objects.filter(source=SOURCE).exists():
        return f"电子证照：{report.to_text()} 演示证照已存在"
    codes = report.created + report.updated + report.unchanged
    types = {t.name: t for t in LicenceType.objects.filter(code__in=codes).select_related("department")}
    rng = random.Random(seed)
    people = _persons(limit=16)
    enterprises = _enterprises(limit=PER_TYPE * 2)
    groups: dict[tuple[int, int], list[dict]] = defaultdict(list)
    issuers: dict[int, Organization] = {}
    cache: dict = {}
    for licence_type, division_code, row in _plans(types, people, enterprises, rng):
        issuer = _issuer(licence_type.issuer_kind or licence_type.department.kind, division_code, province_code, cache)
        issuer = issuer or licence_type.department
        issuers[issuer.pk] = issuer
        groups[(licence_type.pk, issuer.pk)].append(row)
    by_pk = {t.pk: t for t in types.values()}
    issued = 0
    for (type_pk, issuer_pk), rows in groups.items():
        issued += len(services.issue_many(by_pk[type_pk], rows, issuer=issuers[issuer_pk], actor=actor, source=SOURCE))
    return f"电子证照：{report.to_text()} 签发演示证照 {issued} 本"
