"""Bulk import and export of catalogue entries (CSV / xlsx), all or nothing, with a report of every bad row.

File layout (one row per **information item**; the entry columns repeat on each of its rows, and
consecutive rows with the same ``entry`` key form one entry)::

    entry, classification, name, summary, keywords, format, format_detail, sharing_type,
    sharing_conditions, sharing_mode, open_type, open_conditions, update_cycle, contact,
    item_code, item_name, data_type, length, data_element, registry, registry_field,
    item_sharing_type, is_own, item_description

``entry`` is any key the file uses to group rows (a number, the future name); the entry columns
are read from the entry's first row. Choice columns take the stored value (``conditional``) or the
Chinese label (``有条件共享``). Every entry is validated by the same service as the pages
(:func:`dgov.catalog.services.create_resource`); the report lists every problem with the file's
line numbers (header is line 1). Nothing is written unless the whole file is valid. An export
writes the same layout, so an exported file is importable (new drafts, new codes).
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from dgov.catalog import services
from dgov.catalog.models import InformationResource, OpenType, ResourceClass, SharingType

__all__ = ["COLUMNS", "ImportReport", "export_entries", "import_entries"]

ENTRY_COLUMNS = (
    "entry",
    "classification",
    "name",
    "summary",
    "keywords",
    "format",
    "format_detail",
    "sharing_type",
    "sharing_conditions",
    "sharing_mode",
    "open_type",
    "open_conditions",
    "update_cycle",
    "contact",
)
ITEM_COLUMNS = (
    "item_code",
    "item_name",
    "data_type",
    "length",
    "data_element",
    "registry",
    "registry_field",
    "item_sharing_type",
    "is_own",
    "item_description",
)
COLUMNS = ENTRY_COLUMNS + ITEM_COLUMNS
_LABELS = {
    "format": InformationResource.Format.choices,
    "sharing_type": SharingType.choices,
    "item_sharing_type": SharingType.choices,
    "sharing_mode": InformationResource.SharingMode.choices,
    "open_type": OpenType.choices,
    "update_cycle": InformationResource.UpdateCycle.choices,
}
_TRUE = {"1", "true", "yes", "是", "y"}
_FALSE = {"0", "false", "no", "否", "n"}


@dataclass
class RowError:
    """One problem: file line (0: the file), column or field, message."""

    line: int
    field: str
    message: str


@dataclass
class ImportReport:
    """The outcome of an import: counts, created codes and every problem found."""

    file: str
    rows: int = 0
    entries: int = 0
    created: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the file had no problem (and every entry was written)."""
        return not self.errors

    def to_text(self) -> str:
        """The report as readable Chinese text."""
        status = "导入成功" if self.ok else "导入失败，未写入任何数据"
        lines = [f"{status}：{self.file}，{self.rows} 行，{self.entries} 条信息资源，新建 {len(self.created)} 条"]
        lines += [f"  新建 {code}" for code in self.created]
        for error in self.errors:
            where = f"第 {error.line} 行" if error.line else "文件"
            lines.append(f"  {where} {error.field}：{error.message}")
        return "\n".join(lines)


def _read_rows(path: Path) -> list[tuple[int, dict]]:
    """(line, {column: text}) of a CSV (UTF-8 with or without BOM, else GB18030) or xlsx file."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            raw = [
                (n, ["" if v is None else str(v) for v in values])
                for n, values in enumerate(workbook.worksheets[0].iter_rows(values_only=True), start=1)
            ]
        finally:
            workbook.close()
    else:
        data = path.read_bytes()
        encoding = "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            text = data.decode("gb18030")
        reader = csv.reader(io.StringIO(text, newline=""))
        raw = []
        for cells in reader:
            raw.append((reader.line_num, cells))
    if not raw:
        return []
    header = [h.strip() for h in raw[0][1]]
    return [(line, dict(zip(header, cells, strict=False))) for line, cells in raw[1:] if any(c.strip() for c in cells)]


def _choice(name: str, value: str) -> str:
    """A choice column's value: the stored value, or the value of a Chinese label."""
    value = value.strip()
    for stored, label in _LABELS.get(name, ()):
        if value == str(label):
            return stored
    return value


def _error_lines(exc: ValidationError, entry_line: int, item_lines: list[int]) -> list[RowError]:
    """A service ValidationError as row errors: item errors on the item's own line."""
    out = []
    for key, messages in exc.message_dict.items():
        line, name = entry_line, key
        if key.startswith("items.") and key.count(".") == 2:
            _items, number, name = key.split(".")
            index = int(number) - 1
            line = item_lines[index] if 0 <= index < len(item_lines) else entry_line
        for message in messages:
            out.append(RowError(line, name, message))
    return out


class _Rollback(Exception):
    """Raised inside the import transaction to undo it when any entry failed."""


def import_entries(path, *, actor, provider=None) -> ImportReport:
    """Create the file's entries as drafts of the actor's department — all of them, or none (see module doc)."""
    path = Path(path)
    report = ImportReport(file=path.name)
    rows = _read_rows(path)
    report.rows = len(rows)
    if not rows:
        report.errors.append(RowError(0, "", "文件没有数据行"))
        return report
    missing = [c for c in ("entry", "classification", "name") if c not in rows[0][1]]
    if missing:
        report.errors.append(RowError(1, ",".join(missing), "缺少必需的列"))
        return report
    groups: dict[str, list[tuple[int, dict]]] = {}
    for line, row in rows:
        groups.setdefault(row.get("entry", "").strip() or f"#{line}", []).append((line, row))
    report.entries = len(groups)
    classes = {c.code: c for c in ResourceClass.objects.all()}
    try:
        with transaction.atomic():
            for group in groups.values():
                first_line, first = group[0]
                data = {name: _choice(name, first.get(name, "")) for name in services.RESOURCE_FIELDS}
                items, item_lines = [], []
                for line, row in group:
                    if not any(row.get(c, "").strip() for c in ITEM_COLUMNS):
                        continue
                    own = row.get("is_own", "").strip().lower()
                    if own and own not in _TRUE | _FALSE:
                        report.errors.append(RowError(line, "is_own", f"无法识别的取值 {own}（应为 是/否）"))
                    items.append(
                        {
                            "code": row.get("item_code", ""),
                            "name": row.get("item_name", ""),
                            "data_type": row.get("data_type", "").strip().upper(),
                            "length": row.get("length", "").strip() or None,
                            "data_element": row.get("data_element", ""),
                            "registry": row.get("registry", ""),
                            "registry_field": row.get("registry_field", ""),
                            "sharing_type": _choice("item_sharing_type", row.get("item_sharing_type", "")),
                            "is_own": own not in _FALSE,
                            "description": row.get("item_description", ""),
                        }
                    )
                    item_lines.append(line)
                code = first.get("classification", "").strip()
                classification = classes.get(code)
                if classification is None:
                    report.errors.append(RowError(first_line, "classification", f"资源分类 {code or '—'} 不存在"))
                    continue
                try:
                    with transaction.atomic():
                        resource = services.create_resource(
                            actor=actor, provider=provider, classification=classification, data=data, items=items
                        )
                except ValidationError as exc:
                    report.errors.extend(_error_lines(exc, first_line, item_lines))
                    continue
                report.created.append(resource.code)
            if report.errors:
                raise _Rollback
    except _Rollback:
        report.created = []
    return report


def export_entries(path, resources) -> int:
    """Write entries' working copies in the import layout (CSV with BOM, or xlsx by extension); returns entries."""
    path = Path(path)
    rows: list[list] = []
    count = 0
    for number, resource in enumerate(resources, start=1):
        count += 1
        entry = [
            str(number),
            resource.classification.code,
            *(getattr(resource, name) for name in services.RESOURCE_FIELDS),
        ]
        for item in resource.items.select_related("registry"):
            rows.append(
                [
                    *entry,
                    item.code,
                    item.name,
                    item.data_type,
                    item.length or "",
                    item.data_element,
                    item.registry.code if item.registry_id else "",
                    item.registry_field,
                    item.sharing_type,
                    "是" if item.is_own else "否",
                    item.description,
                ]
            )
    header = ["entry", "classification", *services.RESOURCE_FIELDS, *ITEM_COLUMNS]
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet()
        sheet.append(header)
        for row in rows:
            sheet.append([str(v) for v in row])
        workbook.save(path)
    else:
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows)
    return count
