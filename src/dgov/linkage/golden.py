"""Golden records (黄金记录) under "one data, one source" (一数一源), and the conflicts they reveal.

Given clusters of records that denote the same entity and, per role, the table that is its
authoritative source, the golden record of a cluster takes every value from that role's
authoritative table only — never from another source, however complete — with its lineage
(table, row id). Where sources disagree the disagreement is reported as a :class:`Conflict`, in a
shape the quality app can turn into findings (each carries its GB/T 36344 dimension).

Values are compared after the engine's normalization of their role (full-width digits, spaces in
names, date formats, +86 prefixes, 15-digit ID numbers and an address written with or without its
province do not count as disagreements); a homophone or a look-alike character does, since it is
a data error the source should fix.
"""

from __future__ import annotations

import csv
import functools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from dgov.linkage import normalize

# Conflict kinds and the GB/T 36344 dimension a finding about them belongs to.
CONFLICT_DIMENSIONS = {
    "differs": "准确性",  # a source disagrees with the authoritative value
    "authority_inconsistent": "准确性",  # the authoritative table itself holds two values (a duplicate)
    "missing_in_authority": "完整性",  # the authority's record lacks a value that another source has
}


class SourceRef(NamedTuple):
    """Lineage of a value: the table and the row id it was read from (a plain tuple underneath)."""

    table: str
    row_id: str

    def __str__(self) -> str:
        """``table:row_id``."""
        return f"{self.table}:{self.row_id}"


@dataclass(frozen=True)
class GoldenValue:
    """One value of a golden record and where it came from (None when the authority has no value)."""

    value: str | None
    source: SourceRef | None


@dataclass
class GoldenRecord:
    """The consolidated record of one cluster: a value per role, each from its authoritative source."""

    cluster_id: int
    members: list[SourceRef]
    values: dict[str, GoldenValue]


@dataclass(frozen=True)
class Conflict:
    """A disagreement between sources about one role of one entity.

    ``source``/``value`` is the row the finding is about (the row to fix) and its value;
    ``reference_source``/``reference_value`` what it was compared with: the authoritative value for
    ``differs`` and ``authority_inconsistent``, another source's value for ``missing_in_authority``.
    """

    cluster_id: int
    role: str
    kind: str
    source: SourceRef
    value: str | None
    reference_source: SourceRef
    reference_value: str | None

    @property
    def dimension(self) -> str:
        """The GB/T 36344 quality dimension of the finding this conflict becomes."""
        return CONFLICT_DIMENSIONS[self.kind]

    def as_finding(self) -> dict[str, str | int | None]:
        """A flat dict for the quality app: what is wrong, where, and the value it was compared with."""
        return {
            "dimension": self.dimension,
            "kind": self.kind,
            "cluster_id": self.cluster_id,
            "role": self.role,
            "table": self.source.table,
            "row_id": self.source.row_id,
            "value": self.value,
            "reference_table": self.reference_source.table,
            "reference_row_id": self.reference_source.row_id,
            "reference_value": self.reference_value,
        }


@dataclass
class GoldenResult:
    """Golden records of all clusters and the conflicts found while building them."""

    records: list[GoldenRecord] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=262144)
def comparable(role: str, value: str | None) -> str | None:
    """``value`` normalized the way the engine compares ``role`` (None when empty or unparsable)."""
    if value is None or not value.strip():
        return None
    if role in {"full_name", "family_name", "given_name"}:
        return normalize.clean_name(value)
    if role == "birth_date":
        return normalize.birth_date(value) or normalize.text(value)
    if role == "identifier":
        return normalize.identifier_value(value)
    if role == "sex":
        return normalize.sex(value) or normalize.text(value)
    if role == "phone":
        return normalize.phone(value) or normalize.text(value)
    if role == "address":
        return normalize.address_key(value)
    if role == "postcode":
        return normalize.postcode(value) or normalize.text(value)
    if role == "city":
        return normalize.city(value)
    return normalize.compact_text(value)


def build_golden_records(
    clusters: Mapping[int, Iterable[SourceRef | tuple[str, str]]],
    records: Mapping[SourceRef | tuple[str, str], Mapping[str, object]],
    authority: Mapping[str, str],
) -> GoldenResult:
    """Build one golden record per cluster and list the conflicts.

    ``clusters`` maps a cluster id to its members, ``records`` a member to its raw values by role,
    ``authority`` a role to the name of its authoritative table. For each role:

    * the golden value is the authoritative table's value in the cluster; if that table holds
      several different values (a duplicate in the authority), the most frequent wins, ties going to
      the first member, and the others are ``authority_inconsistent`` conflicts;
    * a non-authoritative member whose value differs is a ``differs`` conflict;
    * an authoritative member without a value while another source has one is a
      ``missing_in_authority`` conflict — the value is *not* copied from the other source;
    * a cluster without any record of the authoritative table has no value for the role and no
      conflict (whether the authority should know the entity is a completeness rule on that table).
    """
    result = GoldenResult(roles=list(authority))
    for cluster_id, raw_members in clusters.items():
        members = sorted(SourceRef(*m) for m in set(raw_members))
        values: dict[str, GoldenValue] = {}
        for role, table in authority.items():
            golden, conflicts = _resolve_role(cluster_id, role, table, members, records)
            values[role] = golden
            result.conflicts.extend(conflicts)
        result.records.append(GoldenRecord(cluster_id=int(cluster_id), members=members, values=values))
    return result


def _raw(records: Mapping, member: SourceRef, role: str) -> str | None:
    """A member's raw value of ``role``, trimmed; None when missing or blank."""
    value = records.get(member, {}).get(role)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _resolve_role(
    cluster_id: int, role: str, table: str, members: list[SourceRef], records: Mapping
) -> tuple[GoldenValue, list[Conflict]]:
    """The golden value of one role in one cluster and the conflicts about it."""
    authoritative = [m for m in members if m.table == table]
    present = [(m, v) for m in authoritative if (v := _raw(records, m, role)) is not None]
    other_values = [(m, v) for m in members if m.table != table and (v := _raw(records, m, role)) is not None]
    if not other_values and len(present) <= 1:  # nothing to compare: most clusters
        return (GoldenValue(present[0][1], present[0][0]) if present else GoldenValue(None, None)), []
    conflicts: list[Conflict] = []
    if not present:
        witness, value = other_values[0]
        for member in authoritative:
            conflicts.append(Conflict(cluster_id, role, "missing_in_authority", member, None, witness, value))
        return GoldenValue(None, None), conflicts
    keyed = [(m, v, comparable(role, v)) for m, v in present]
    frequency = Counter(key for _m, _v, key in keyed) if len(keyed) > 1 else {keyed[0][2]: 1}
    best = max(frequency.values())
    chosen_member, chosen_value, chosen_key = next(p for p in keyed if frequency[p[2]] == best)
    for member, value, key in keyed:
        if key != chosen_key:
            conflicts.append(
                Conflict(cluster_id, role, "authority_inconsistent", member, value, chosen_member, chosen_value)
            )
    for member, value in other_values:
        if comparable(role, value) != chosen_key:
            conflicts.append(Conflict(cluster_id, role, "differs", member, value, chosen_member, chosen_value))
    return GoldenValue(chosen_value, chosen_member), conflicts


def write_golden_records(path: str | Path, result: GoldenResult) -> int:
    """Write golden records as CSV: cluster_id, members, then ``<role>`` and ``<role>_source`` per role."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["cluster_id", "members", *[c for role in result.roles for c in (role, f"{role}_source")]])
        for record in result.records:
            row: list[object] = [record.cluster_id, len(record.members)]
            for role in result.roles:
                value = record.values[role]
                row += [value.value or "", str(value.source) if value.source else ""]
            writer.writerow(row)
    return len(result.records)


CONFLICT_COLUMNS = (
    "cluster_id",
    "role",
    "kind",
    "dimension",
    "table",
    "row_id",
    "value",
    "reference_table",
    "reference_row_id",
    "reference_value",
)


def write_conflicts(path: str | Path, conflicts: Iterable[Conflict]) -> int:
    """Write conflicts as CSV (columns :data:`CONFLICT_COLUMNS`); returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CONFLICT_COLUMNS)
        writer.writeheader()
        for conflict in conflicts:
            writer.writerow({k: ("" if v is None else v) for k, v in conflict.as_finding().items()})
            count += 1
    return count
