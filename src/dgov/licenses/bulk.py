"""Bulk issuance from CSV (批量签发): reading the file, reporting every bad row, issuing all or nothing.

The file is UTF-8 (with or without BOM; GB 18030, as spreadsheet programs in China save it, is
accepted too). The first line names the columns, by their code or their Chinese label:

==================  ==================  ===================================================
column              label               value
==================  ==================  ===================================================
``holder_name``     持证主体名称          the holder's name (required)
``holder_id``       持证主体证件号码      resident ID number (persons) or USCC (enterprises)
``number``          证照编号              the licence number; empty: generated
``valid_from``      有效期起始            ``YYYY-MM-DD``; empty: the day of issue
``valid_until``     有效期截止            ``YYYY-MM-DD``; empty: by the type's validity rule
item name           item label          one column per data item of the type
==================  ==================  ===================================================

:func:`issue_csv` checks the header and every row first and reports every problem as (line,
column, reason); nothing is issued unless all rows are good. Then
:func:`dgov.licenses.services.issue_many` issues them in one transaction.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dgov.licenses import services
from dgov.licenses.models import Licence, LicenceType

__all__ = ["MAX_BYTES", "CsvReport", "csv_template", "issue_csv", "parse_csv"]

MAX_BYTES = 64 * 1024 * 1024
HOLDER_LABELS = {
    "holder_name": gettext_lazy("持证主体名称"),
    "holder_id": gettext_lazy("持证主体证件号码"),
    "number": gettext_lazy("证照编号"),
    "valid_from": gettext_lazy("有效期起始"),
    "valid_until": gettext_lazy("有效期截止"),
}
# Chinese labels are accepted whatever the active language.
_HOLDER_ALIASES = {
    "持证主体名称": "holder_name",
    "持证主体证件号码": "holder_id",
    "证照编号": "number",
    "有效期起始": "valid_from",
    "有效期截止": "valid_until",
}


@dataclass
class CsvReport:
    """The outcome of a bulk file: rows read, every problem (line, column, reason), the licences issued."""

    rows: int = 0
    problems: list[tuple[int, str, str]] = field(default_factory=list)
    issued: list[Licence] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every row was good and the licences were issued."""
        return not self.problems

    def to_text(self) -> str:
        """The report for people (Chinese), one line per problem."""
        if self.problems:
            lines = [_("文件有 %(n)d 处错误，未签发任何证照：") % {"n": len(self.problems)}]
            for line, column, reason in self.problems:
                values = {"line": line, "column": column or "—", "reason": reason}
                lines.append(_("第 %(line)d 行 %(column)s：%(reason)s") % values)
            return "\n".join(lines)
        return _("已签发 %(n)d 本证照。") % {"n": len(self.issued)}

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "ok": self.ok,
            "rows": self.rows,
            "issued": len(self.issued),
            "problems": [{"line": line, "column": column, "reason": reason} for line, column, reason in self.problems],
        }


def _decode(data: bytes) -> str:
    """The text of a CSV file: UTF-8 (BOM allowed), else GB 18030."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def csv_template(licence_type: LicenceType) -> str:
    """The header line of a bulk file for a type (Chinese labels), ready to be filled in."""
    columns = [str(HOLDER_LABELS[name]) for name in services.HOLDER_COLUMNS]
    columns += [item.get("label") or item["name"] for item in licence_type.items]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(columns)
    return buffer.getvalue()


def _columns(licence_type: LicenceType, header: list[str]) -> tuple[list[str | None], list[tuple[str, str]]]:
    """The field each header column names (None for unknown ones) and the header's problems."""
    items = {item["name"]: item for item in licence_type.items}
    by_label = {item.get("label"): item["name"] for item in licence_type.items if item.get("label")}
    names: list[str | None] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for text in header:
        title = text.strip()
        name = (
            title
            if title in services.HOLDER_COLUMNS or title in items
            else _HOLDER_ALIASES.get(title) or by_label.get(title)
        )
        if name is None:
            problems.append((title, _("未知的列（应为持证主体、证照编号、有效期或该证照类型的数据项）")))
        elif name in seen:
            problems.append((title, _("列重复")))
            name = None
        else:
            seen.add(name)
        names.append(name)
    for required in ("holder_name", "holder_id"):
        if required not in seen:
            problems.append((str(HOLDER_LABELS[required]), _("缺少此列")))
    for item in licence_type.items:
        if item.get("required") and item["name"] not in seen:
            problems.append((item.get("label") or item["name"], _("缺少必填数据项的列")))
    return names, problems


def parse_csv(licence_type: LicenceType, data: bytes) -> tuple[list[tuple[int, dict]], dict[str, str], list]:
    """(rows as (line, issue_many row), {field: header text}, problems as (line, column, reason))."""
    problems: list[tuple[int, str, str]] = []
    if len(data) > MAX_BYTES:
        return [], {}, [(0, "", _("文件过大（上限 64 MiB）"))]
    try:
        text = _decode(data)
    except UnicodeDecodeError:
        return [], {}, [(0, "", _("文件应为 UTF-8 或 GB 18030 编码的 CSV"))]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return [], {}, [(1, "", _("CSV 格式错误：%(error)s") % {"error": exc})]
    if not header or not any(cell.strip() for cell in header):
        return [], {}, [(1, "", _("文件没有表头"))]
    names, header_problems = _columns(licence_type, header)
    problems.extend((1, column, reason) for column, reason in header_problems)
    headers = {name: header[position].strip() for position, name in enumerate(names) if name}
    rows: list[tuple[int, dict]] = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append((reader.line_num, "", _("CSV 格式错误：%(error)s") % {"error": exc}))
            break
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            problems.append((line, "", _("有 %(n)d 列，表头有 %(m)d 列") % {"n": len(cells), "m": len(header)}))
            continue
        row: dict[str, Any] = {"data": {}}
        for name, cell in zip(names, cells, strict=True):
            if name is None:
                continue
            value = cell.strip()
            if name in services.HOLDER_COLUMNS:
                row[name] = value
            elif value != "":
                row["data"][name] = value
        rows.append((line, row))
    if not rows and not problems:
        problems.append((2, "", _("文件没有数据行")))
    return rows, headers, problems


def issue_csv(
    licence_type: LicenceType,
    data: bytes,
    *,
    issuer,
    actor,
    source: str = "import",
    alg: str | None = None,
    progress=None,
    start=None,
) -> CsvReport:
    """Issue the licences of a CSV file, all or nothing; the report lists every bad row (line, column, reason).

    Permission is checked first (PermissionDenied, audited) so a refused official learns nothing
    from the file's checks. ``start(rows)`` is called once the file is read and good, ``progress(n)``
    after each chunk issued.
    """
    services.check_issuer(licence_type, issuer, actor, action="licenses.licence.issue_many")
    rows, headers, problems = parse_csv(licence_type, data)
    report = CsvReport(rows=len(rows), problems=problems)
    if problems:
        if rows and not any(line == 1 for line, _column, _reason in problems):
            # Rows that could be read are checked too, so one report lists every problem of the file.
            problems.extend(services.check_rows(licence_type, rows))
            report.problems = _named(sorted(problems, key=lambda problem: problem[0]), headers)
        return report
    if start is not None:
        start(len(rows))
    try:
        report.issued = services.issue_many(
            licence_type, rows, issuer=issuer, actor=actor, source=source, alg=alg, progress=progress
        )
    except services.BulkIssueError as exc:
        report.problems = _named(exc.problems, headers)
    return report


def _named(problems, headers: dict[str, str]) -> list[tuple[int, str, str]]:
    """Problems with each field named by its column header in the file."""
    return [(line, headers.get(column, column), reason) for line, column, reason in problems]
