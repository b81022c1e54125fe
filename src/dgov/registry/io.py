"""Bulk import (导入) and export (导出) of registry records: CSV, xlsx and JSON Lines.

Import
    ``import_file`` reads CSV (UTF-8 with or without BOM, UTF-16 with BOM, otherwise GB18030 —
    a superset of GBK, which Chinese government spreadsheets are usually saved in), xlsx (first
    sheet, openpyxl read-only streaming) or JSON Lines. Columns are mapped to fields by an
    explicit ``mapping`` (file header → field name; a header mapped to ``""`` is ignored on
    purpose) and, for the remaining headers, automatically by field name, Chinese label, English
    label or a common alias of the field's type (``身份证号`` → the registry's resident-ID field).

    Every row is cleaned with ``schema.clean_values``; the report lists every bad row with its
    line number as a person counts lines in the file (the header is line 1; blank lines count),
    the field, the (masked, when personal) value and the Chinese reason. Duplicates of unique
    fields are reported per row, both within the file and against records already stored.

    All-or-nothing, in one pass: rows are validated and handed to
    ``services.bulk_create_records(validate=False)`` as they are read, inside one transaction.
    At the first bad row writing stops, the rest of the file is still validated (so the report is
    complete), and the transaction is rolled back. A good file is thus read, cleaned and written
    once — the fastest order for the usual case — and a bad file costs at most the writes done
    before its first bad row. Memory holds one batch of rows, plus the unique values already
    seen (for duplicate detection within the file) and the list of errors. Files of
    ``PARALLEL_MIN_ROWS`` rows or more are read and cleaned in a worker process
    (``dgov.registry.io_worker``) while this process checks and writes, using both cores.

Export
    ``export_records`` writes the current values of a registry's live records as CSV (UTF-8 with
    BOM, so that Excel opens it correctly; header of field names or, with ``labels``, labels),
    xlsx (streaming write-only workbook, every value as text so ID numbers keep all digits) or
    JSON Lines (one object of field → value per line: streamable, and each line re-importable).
    Personal fields are masked unless ``unmask``; an unmasked export is allowed only to a
    department that may read the registry and is the authority of every personal field (or is a
    data administrator, kind ``DSJ``), and it is audited and logged in the access log per record.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
import io
import json
import os
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from dgov.kernel.fields import blind_index, blind_index_key
from dgov.kernel.models import Organization
from dgov.kernel.services import audit
from dgov.registry import bulk, schema, services
from dgov.registry.models import AccessLog, Record, RecordKey, Registry

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "ImportRefused",
    "ImportReport",
    "RowError",
    "export_records",
    "import_file",
    "parse_mapping",
]

IMPORT_FORMATS = ("csv", "xlsx", "json")
EXPORT_FORMATS = ("csv", "xlsx", "json")
BATCH_SIZE = 2000
UID_COLUMN = "uid"
PARALLEL_MIN_ROWS = 50_000
_QUERY_CHUNK = 900  # parameters per IN (...) query, below SQLite's historical limit of 999
_VALUE_LIMIT = 200
_DETECT_BYTES = 1 << 20
_DELIMITERS = (",", "\t", ";", "|")

# Headers that name a field by its type rather than by its label (used only when the registry has
# exactly one field of that type).
_TYPE_ALIASES = {
    "resident_id": ("身份证号", "身份证号码", "居民身份证号", "居民身份证号码", "公民身份号码", "身份证"),
    "uscc": ("统一社会信用代码", "社会信用代码", "信用代码"),
    "division_code": ("行政区划代码", "区划代码", "行政区划"),
    "phone": ("手机", "手机号", "手机号码", "联系电话", "电话", "电话号码", "联系方式"),
    "email": ("电子邮箱", "邮箱", "电子邮件", "email", "e-mail"),
}
_BRACKETED = re.compile(r"[（(【\[].*?[）)】\]]")


class ImportRefused(PermissionDenied):
    """The acting department may not import into this registry (or these fields)."""


@dataclass
class RowError:
    """One problem found in an import file: line (0 for the file as a whole), field, value, reason."""

    line: int
    field: str
    message: str
    column: str = ""
    value: str = ""


@dataclass
class ImportReport:
    """The outcome of one import: counts, timing, column mapping and every problem found."""

    registry: str
    file: str
    format: str
    encoding: str = ""
    dry_run: bool = False
    rows: int = 0
    imported: int = 0
    bad_rows: int = 0
    elapsed: float = 0.0
    columns: dict[str, str] = field(default_factory=dict)
    unknown_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    refused: bool = False

    @property
    def ok(self) -> bool:
        """True when the file had no problem (and, unless a dry run, every row was written)."""
        return not self.errors

    @property
    def status(self) -> str:
        """``imported``, ``validated`` (a clean dry run) or ``rejected``."""
        if self.errors:
            return "rejected"
        return "validated" if self.dry_run else "imported"

    @property
    def rows_per_second(self) -> float:
        """Rows read per second of elapsed time."""
        return self.rows / self.elapsed if self.elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-serializable data."""
        data = asdict(self)
        data["status"] = self.status
        data["ok"] = self.ok
        data["elapsed"] = round(self.elapsed, 3)
        data["rows_per_second"] = round(self.rows_per_second, 1)
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON text (Chinese kept readable)."""
        return json.dumps(self.as_dict(), ensure_ascii=False, indent=indent)

    def to_text(self, *, limit: int | None = None) -> str:
        """The report as readable Chinese text; ``limit`` caps the number of listed errors."""
        status = {
            "imported": _("导入成功"),
            "validated": _("校验通过（试运行，未写入）"),
            "rejected": _("导入失败，未写入任何数据"),
        }[self.status]
        lines = [
            _("%(status)s：%(file)s → %(registry)s（%(format)s%(encoding)s）")
            % {
                "status": status,
                "file": self.file,
                "registry": self.registry,
                "format": self.format.upper(),
                "encoding": f"，{self.encoding}" if self.encoding else "",
            },
            _("读取 %(rows)s 行，写入 %(imported)s 行，有错误的行 %(bad)s 行；用时 %(elapsed).1f 秒（%(rate)s 行/秒）")
            % {
                "rows": f"{self.rows:,}",
                "imported": f"{self.imported:,}",
                "bad": f"{self.bad_rows:,}",
                "elapsed": self.elapsed,
                "rate": f"{self.rows_per_second:,.0f}",
            },
        ]
        if self.columns:
            pairs = "，".join(f"{column} → {name}" for column, name in self.columns.items())
            lines.append(_("列映射：%(pairs)s") % {"pairs": pairs})
        if self.ignored_columns:
            lines.append(_("忽略的列：%(columns)s") % {"columns": "，".join(self.ignored_columns)})
        if self.unknown_columns:
            lines.append(_("无法识别的列：%(columns)s") % {"columns": "，".join(self.unknown_columns)})
        if self.missing_columns:
            lines.append(_("缺少的必填列：%(columns)s") % {"columns": "，".join(self.missing_columns)})
        if self.errors:
            lines.append(_("错误（%(count)s 条）：") % {"count": f"{len(self.errors):,}"})
            shown = self.errors if limit is None else self.errors[:limit]
            for error in shown:
                lines.append("  " + _format_error(error))
            if len(shown) < len(self.errors):
                lines.append(
                    "  " + _("……另有 %(count)s 条错误未列出") % {"count": f"{len(self.errors) - len(shown):,}"}
                )
        return "\n".join(lines)


def _format_error(error: RowError) -> str:
    """One error as a line of text: where, which field, which value, why."""
    where = _("第 %(line)d 行") % {"line": error.line} if error.line else _("文件")
    what = error.field or error.column
    if what and error.column and error.column != error.field:
        what = f"{error.column}（{error.field}）" if error.field else error.column
    value = f"「{error.value}」" if error.value else ""
    return f"{where} {what}{value}：{error.message}" if what or value else f"{where}：{error.message}"


# --- reading files ---------------------------------------------------------------------------


@dataclass
class _Source:
    """An opened import file: its rows as (line number, cells) with the header first."""

    name: str
    format: str
    encoding: str
    rows: Iterator[tuple[int, list]]
    total: int | None
    close: Callable[[], None]


def _open_binary(path_or_file) -> tuple[IO[bytes], str, bool]:
    """Open a path (or adopt a file object) for binary reading; returns (file, name, we_opened)."""
    if isinstance(path_or_file, str | os.PathLike):
        path = Path(path_or_file)
        return path.open("rb"), path.name, True
    name = Path(getattr(path_or_file, "name", "") or "upload").name
    if isinstance(path_or_file, io.TextIOBase):
        # A text stream: re-encode lazily so every reader below works on bytes.
        return _TextToBytes(path_or_file), name, False
    return path_or_file, name, False


class _TextToBytes(io.RawIOBase):
    """A binary view (UTF-8) of a text stream, so text uploads go through the byte readers."""

    def __init__(self, text: IO[str]):
        self._text = text
        self._pending = b""

    def readable(self) -> bool:
        """This stream can be read."""
        return True

    def readinto(self, buffer) -> int:
        """Fill ``buffer`` with the next UTF-8 bytes of the text stream."""
        while len(self._pending) < len(buffer):
            chunk = self._text.read(65536)
            if not chunk:
                break
            self._pending += chunk.encode("utf-8")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _detect_format(name: str, head: bytes) -> str:
    """The file format from its extension, or its first bytes (zip → xlsx, ``{`` → JSON Lines)."""
    suffix = Path(name).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix in (".json", ".jsonl", ".ndjson"):
        return "json"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return "json"
    return "csv"


def _detect_encoding(head: bytes) -> str:
    """UTF-8 (BOM or valid), UTF-16 (BOM), else GB18030 — the superset of GBK/GB2312."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        # final=False: the sample may end in the middle of a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _count_lines(stream: IO[bytes]) -> int | None:
    """Count newline bytes in a seekable stream (for the progress bar), then rewind; None if unseekable."""
    try:
        start = stream.tell()
    except (OSError, AttributeError):
        return None
    count = 0
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        count += chunk.count(b"\n")
    stream.seek(start)
    return count


def _csv_rows(stream: IO[bytes], encoding: str) -> Iterator[tuple[int, list]]:
    """Rows of a CSV file as (first line of the row, cells); the delimiter is sniffed from the header."""
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    first = text.readline()
    counts = {d: first.count(d) for d in _DELIMITERS}
    delimiter = max(_DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","
    reader = csv.reader(_chain_first(first, text), delimiter=delimiter)
    end = 0
    for cells in reader:
        line = end + 1
        end = reader.line_num
        yield line, cells


def _chain_first(first: str, rest: IO[str]) -> Iterator[str]:
    """The header line read for sniffing, followed by the rest of the text stream."""
    if first:
        yield first
    yield from rest


def _xlsx_cell(value) -> str:
    """A spreadsheet cell as the text a person sees (dates ISO, whole floats without ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _open_xlsx(stream: IO[bytes]):
    """Open the first worksheet of a workbook for streaming; returns (rows, total, close)."""
    from openpyxl import load_workbook

    workbook = load_workbook(stream, read_only=True, data_only=True)
    sheet = workbook.worksheets[0]
    total = sheet.max_row
    # Some writers store wrong dimensions; without them openpyxl reads every stored row.
    sheet.reset_dimensions()

    def rows():
        for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield line, [_xlsx_cell(v) for v in values]

    return rows(), total, workbook.close


def _json_rows(stream: IO[bytes], encoding: str) -> Iterator[tuple[int, list]]:
    """JSON Lines as rows: a header of the first object's keys, then each object's values in that order.

    Keys first seen in later objects extend the header (and are then mapped like any column when
    reported); a line that is not a JSON object becomes a row carrying a ``_JsonError``.
    """
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    header: list[str] = []
    index: dict[str, int] = {}
    lines = ((number, raw) for number, raw in enumerate(text, start=1) if raw.strip())
    first = next(lines, None)
    if first is None:
        return
    number, raw = first
    obj = _json_load(raw)
    if isinstance(obj, dict):
        for key in obj:
            index[key] = len(header)
            header.append(str(key))
    yield 0, header
    yield number, _json_cells(obj, index, header)
    for number, raw in lines:
        yield number, _json_cells(_json_load(raw), index, header)


def _json_load(raw: str):
    """One JSON Lines line parsed, or a ``_JsonError`` saying why it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError as exc:
        return _JsonError(str(exc))


class _JsonError:
    """A JSON Lines line that is not valid JSON (reported as a row error)."""

    def __init__(self, message: str):
        self.message = message


def _json_cells(obj, index: dict[str, int], header: list[str]) -> list:
    """An object's values in header order (new keys extend the header); errors pass through."""
    if not isinstance(obj, dict):
        return [obj if isinstance(obj, _JsonError) else _JsonError(_("不是 JSON 对象"))]
    cells: list = [""] * len(header)
    for key, value in obj.items():
        position = index.get(key)
        if position is None:
            index[key] = position = len(header)
            header.append(key)
            cells.append("")
        if value is None:
            value = ""
        elif isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        else:
            value = str(value)
        cells[position] = value
    return cells


def _open_source(path_or_file, fmt: str | None, encoding: str | None) -> _Source:
    """Open an import file of any supported format."""
    stream, name, opened = _open_binary(path_or_file)
    if not isinstance(stream, io.BufferedIOBase | io.BytesIO) and not hasattr(stream, "peek"):
        stream = io.BufferedReader(stream) if isinstance(stream, io.RawIOBase) else stream
    try:
        head = stream.peek(_DETECT_BYTES)[:_DETECT_BYTES] if hasattr(stream, "peek") else b""
        if len(head) < _DETECT_BYTES and hasattr(stream, "seek") and stream.seekable():
            position = stream.tell()
            head = stream.read(_DETECT_BYTES)
            stream.seek(position)
        fmt = (fmt or _detect_format(name, head)).lower()
        if fmt not in IMPORT_FORMATS:
            raise ValueError(_("不支持的文件格式：%(format)s（支持 CSV、xlsx、JSON Lines）") % {"format": fmt})
        if fmt == "xlsx":
            rows, total, close_book = _open_xlsx(stream)

            def close():
                close_book()
                if opened:
                    stream.close()

            return _Source(name, fmt, "", rows, total, close)
        encoding = encoding or _detect_encoding(head)
        total = _count_lines(stream) if hasattr(stream, "seekable") and stream.seekable() else None
        rows = _csv_rows(stream, encoding) if fmt == "csv" else _json_rows(stream, encoding)
        return _Source(name, fmt, encoding, rows, total, stream.close if opened else (lambda: None))
    except BaseException:
        if opened:
            stream.close()
        raise


# --- column mapping ---------------------------------------------------------------------------


def _norm(text: str) -> str:
    """A header or label normalized for matching: NFKC, no spaces, case-folded, no required marker."""
    text = unicodedata.normalize("NFKC", str(text)).replace("\ufeff", "")
    return re.sub(r"\s+", "", text).casefold().rstrip("*")


def _auto_candidates(fields: list[schema.FieldDef]) -> dict[str, str]:
    """Normalized names, labels and type aliases → field name (aliases only for unambiguous types)."""
    candidates: dict[str, str] = {}
    by_type: dict[str, list[str]] = {}
    for f in fields:
        by_type.setdefault(f.type, []).append(f.name)
    for f in fields:
        for text in (f.name, f.label, f.label_en):
            if text:
                candidates.setdefault(_norm(text), f.name)
    for type_name, aliases in _TYPE_ALIASES.items():
        names = by_type.get(type_name, [])
        if len(names) == 1:
            for alias in aliases:
                candidates.setdefault(_norm(alias), names[0])
    return candidates


@dataclass
class _Columns:
    """How the file's columns map to fields: (cell index, field) pairs and the problems found."""

    pairs: list[tuple[int, str]]
    mapping: dict[str, str]
    unknown: list[str]
    missing: list[str]
    ignored: list[str]
    errors: list[RowError]


def _map_columns(
    header: list[str], fields: list[schema.FieldDef], mapping: dict[str, str] | None, identifier: str
) -> _Columns:
    """Match headers to fields: explicit mapping first, then names, labels and aliases."""
    by_name = {f.name: f for f in fields}
    auto = _auto_candidates(fields)
    explicit = {_norm(k): (k, v) for k, v in (mapping or {}).items()}
    used: dict[str, str] = {}
    pairs: list[tuple[int, str]] = []
    result = _Columns(pairs, {}, [], [], [], [])
    matched_explicit: set[str] = set()
    for position, raw in enumerate(header):
        column = str(raw).replace("\ufeff", "").strip()
        key = _norm(column)
        if not key:
            if column or position < len(header) - 1:
                result.ignored.append(_("第 %(n)d 列（无表头）") % {"n": position + 1})
            continue
        if key in explicit:
            matched_explicit.add(key)
            target = (explicit[key][1] or "").strip()
            if not target:
                result.ignored.append(column)
                continue
            if target not in by_name:
                result.errors.append(
                    RowError(0, target, _("映射的目标字段不存在于该信息库"), column=column)
                )
                continue
        else:
            target = auto.get(key) or auto.get(_norm(_BRACKETED.sub("", column)))
            if target is None:
                if key == UID_COLUMN and UID_COLUMN not in by_name:
                    # The record identifier written by exports; an import creates new records.
                    result.ignored.append(column)
                else:
                    result.unknown.append(column)
                continue
        if target in used:
            result.errors.append(
                RowError(
                    0,
                    target,
                    _("列“%(a)s”和“%(b)s”都对应字段 %(field)s")
                    % {"a": used[target], "b": column, "field": by_name[target].label},
                    column=column,
                )
            )
            continue
        used[target] = column
        pairs.append((position, target))
        result.mapping[column] = target
    for key, (original, _target) in explicit.items():
        if key not in matched_explicit:
            result.errors.append(RowError(0, "", _("映射中的列在文件表头中不存在"), column=original))
    for column in result.unknown:
        message = _("无法识别的列（请在映射中指定对应字段，或映射为空以忽略）")
        result.errors.append(RowError(0, "", message, column=column))
    for f in fields:
        if (f.required or f.name == identifier) and f.name not in used:
            result.missing.append(f.label or f.name)
            result.errors.append(RowError(0, f.name, _("缺少必填字段“%(label)s”的列") % {"label": f.label or f.name}))
    return result


# --- import ----------------------------------------------------------------------------------


def _resolve_registry(registry) -> Registry:
    """A Registry instance from an instance or a code."""
    return registry if isinstance(registry, Registry) else services.get_registry(str(registry))


def _resolve_source(actor, source) -> Organization:
    """The department the rows come from: ``source`` (instance or code) or the actor's department."""
    if isinstance(source, str) and source:
        try:
            source = Organization.objects.get(code=source)
        except Organization.DoesNotExist:
            raise ImportRefused(_("来源部门 %(code)s 不存在") % {"code": source}) from None
    department = services.department_of(actor)
    if department is None and actor is not None and not isinstance(actor, str):
        # A person (or an account without department) must not borrow a department's authority.
        raise ImportRefused(_("只有部门工作人员可以导入数据"))
    if source is None:
        source = department
    if source is None:
        raise ImportRefused(_("无法确定数据来源部门：请指定来源部门"))
    if department is not None and department.pk != source.pk:
        raise ImportRefused(
            _("工作人员只能以本部门（%(own)s）名义导入，不能代表 %(other)s")
            % {"own": department.name, "other": source.name}
        )
    return source


def _masked(f: schema.FieldDef | None, value) -> str:
    """A value for an error message: masked when the field is personal, cut to a readable length."""
    if value is None or value == "":
        return ""
    if f is not None and f.sensitivity == "personal":
        return schema.mask_value(f, value)
    text = str(value)
    return text if len(text) <= _VALUE_LIMIT else text[:_VALUE_LIMIT] + "…"


def import_file(
    registry,
    path_or_file,
    *,
    mapping: dict[str, str] | None = None,
    actor,
    source=None,
    fmt: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    dry_run: bool = False,
    encoding: str | None = None,
    batch_size: int = BATCH_SIZE,
    parallel: bool | None = None,
) -> ImportReport:
    """Validate every row of a CSV/xlsx/JSON Lines file and create its records, all or nothing.

    ``progress(rows_read, total_estimate)`` is called after every batch. The acting department is
    ``source`` (an Organization or its code) or the actor's department; it must be an authority of
    every imported field (and, for registries scoped by division, of each row's division).
    ``parallel`` cleans rows in a worker process (default: for files of a path with at least
    ``PARALLEL_MIN_ROWS`` lines, when the machine has more than one core).
    """
    started = time.perf_counter()
    registry = _resolve_registry(registry)
    fields = services.registry_fields(registry)
    source_org = _resolve_source(actor, source)
    opened = _open_source(path_or_file, fmt, encoding)
    report = ImportReport(
        registry=registry.code, file=opened.name, format=opened.format, encoding=opened.encoding, dry_run=dry_run
    )
    try:
        path = path_or_file if isinstance(path_or_file, str | os.PathLike) else None
        _Import(registry, fields, report, actor, source_org, batch_size).run(opened, mapping, progress, parallel, path)
    finally:
        opened.close()
        report.elapsed = time.perf_counter() - started
    report.errors.sort(key=lambda e: e.line)
    if report.errors and not dry_run:
        with transaction.atomic():
            audit.record(
                "registry.import",
                actor=actor,
                target=registry,
                outcome="denied" if report.refused else "failed",
                detail=_audit_detail(report, source_org),
            )
    return report


def _audit_detail(report: ImportReport, source: Organization) -> dict:
    """What an audit record keeps about an import (counts, no values)."""
    return {
        "file": report.file,
        "format": report.format,
        "source": source.code,
        "rows": report.rows,
        "imported": report.imported,
        "bad_rows": report.bad_rows,
        "errors": len(report.errors),
    }


def _parse_rows(source_rows: Iterator[tuple[int, list]], pairs: list[tuple[int, str]], width: int, clean):
    """Turn file rows into ``(line, cleaned, errors, raw, None)``: cleaned values, or errors with the raw cells.

    Pure work (no database), shared by the inline path and the worker process (which fills the
    last item, the row as stored, see ``bulk.RowSealer``). Blank lines and rows of empty cells are
    skipped; decoding and CSV syntax errors propagate to the caller.
    """
    for line, cells in source_rows:
        if not cells:
            continue  # a blank line
        first = cells[0]
        if isinstance(first, _JsonError):
            yield line, None, [("", _("不是有效的 JSON：%(error)s") % {"error": first.message})], None, None
            continue
        raw = {}
        for position, name in pairs:
            if position < len(cells):
                value = cells[position].strip()
                if value:
                    raw[name] = value
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            message = _("本行的列数（%(n)d）多于表头（%(m)d）") % {"n": len(cells), "m": width}
            yield line, None, [("", message)], raw, None
            continue
        if not raw and not any(c.strip() for c in cells):
            continue  # a row of empty cells (spreadsheet padding, ",,,,")
        try:
            yield line, clean(raw, False), None, None, None
        except schema.RecordValidationError as exc:
            errors = [(name, message) for name, messages in exc.errors.items() for message in messages]
            yield line, None, errors, raw, None


class _Import:
    """One import run: maps columns, cleans rows, tracks unique values, feeds the engine while clean.

    Division of labour with ``services.bulk_create_records(validate=False)``: this class cleans
    each row once (compiled cleaner), finds duplicates within the file, checks references and the
    division scope; the engine computes the blind-index keys of the rows it receives (unless they
    come prepared) and checks them against stored records. Rows stop going to the engine at the
    first bad row; from then on this class checks the remaining rows against stored records
    itself, so every row is checked exactly once and the report is complete.

    For large files on a machine with more than one core, reading, cleaning and preparing rows as
    stored (blind indexes, sealing: ``bulk.RowSealer``) run in a worker process
    (``dgov.registry.io_worker``) while this process checks and inserts, so the two halves overlap.
    """

    def __init__(self, registry, fields, report: ImportReport, actor, source, batch_size: int):
        self.registry = registry
        self.fields = fields
        self.by_name = {f.name: f for f in fields}
        self.report = report
        self.actor = actor
        self.source = source
        self.batch_size = max(1, int(batch_size))
        self.writing = not report.dry_run
        self.bad_lines: set[int] = set()
        self.seen: dict[str, dict[str, int]] = {}
        self.scope_ok: dict[str, bool] = {}
        self.rule_ok: dict = {}
        self.column_of: dict[str, str] = {}
        self.next_analyze = 2 * self.batch_size

    def error(self, line: int, name: str, message: str, value=None) -> None:
        """Record one error of a row (line 0: the file as a whole) and stop writing."""
        shown = _masked(self.by_name.get(name), value)
        self.report.errors.append(RowError(line, name, message, column=self.column_of.get(name, ""), value=shown))
        if line and line not in self.bad_lines:
            self.bad_lines.add(line)
            self.report.bad_rows += 1
        self.writing = False

    def run(self, opened: _Source, mapping, progress, parallel: bool | None, path) -> None:
        """Read the header, map columns, then validate and write the rows."""
        report = self.report
        try:
            _header_line, header = next(opened.rows)
        except StopIteration:
            self.error(0, "", _("文件为空，没有表头行"))
            return
        except (UnicodeDecodeError, ValueError, OSError) as exc:
            self.error(0, "", _("无法读取文件：%(error)s") % {"error": exc})
            return
        columns = _map_columns(header, self.fields, mapping, self.registry.identifier_field)
        report.columns = columns.mapping
        report.unknown_columns = columns.unknown
        report.missing_columns = columns.missing
        report.ignored_columns = columns.ignored
        report.errors.extend(columns.errors)
        self.column_of = {name: column for column, name in columns.mapping.items()}
        # Authority per field, judged within the department's own division (rows are checked
        # against their own divisions below).
        home = self.source.division.code
        for name in self.column_of:
            if not services.can_write(self.registry, name, self.source, division_code=home):
                report.refused = True
                report.errors.append(
                    RowError(
                        0,
                        name,
                        _("%(department)s 不是字段“%(label)s”的权威来源部门，无权导入")
                        % {"department": self.source.name, "label": self.by_name[name].label},
                        column=self.column_of[name],
                    )
                )
        if report.errors:
            # Wrong columns or no authority: row-by-row messages would only repeat the problem.
            self.writing = False
            return
        self.pairs = columns.pairs
        self.width = len(header)
        self.unique = [f.name for f in self.fields if f.unique and f.name in self.column_of]
        self.seen = {name: {} for name in self.unique}
        self.references = [f for f in self.fields if f.type == "reference" and f.name in self.column_of]
        self.scope_field = self.registry.scope_field or ""
        rule_field = schema.authority_rule_field(self.fields)
        self.rule_field = rule_field.name if rule_field is not None else ""
        if parallel is None:
            parallel = (
                path is not None
                and (opened.total or 0) >= PARALLEL_MIN_ROWS
                and (os.cpu_count() or 1) > 1
            )
        if parallel and path is not None:
            items = self.worker_items(path, opened)
        else:
            clean = schema.compile_cleaner(tuple(self.fields), accept_labels=True)  # enum labels → codes
            items = _parse_rows(opened.rows, self.pairs, self.width, clean)
        rows = self.rows(items, progress, opened.total)
        try:
            if report.dry_run:
                for _row in rows:
                    pass
            else:
                self.write(rows)
        finally:
            rows.close()  # stops the worker process if writing ended early

    def worker_items(self, path, opened: _Source) -> Iterator[tuple]:
        """Parsed and cleaned rows from a worker process reading the same file.

        When writing, the worker also prepares each clean row as stored (blind indexes, public
        JSON, sealed personal values: most of the remaining work per row) with the data keys
        looked up here, once, and handed to it through its stdin pipe — key material is never
        written to disk or put in its environment or arguments.
        """
        from dgov.registry import io_worker

        sealing = None
        if not self.report.dry_run:
            keys = bulk.RowSealer(self.registry.code, self.fields).keys()
            sealing = {"registry": self.registry.code, "keys": dataclasses.astuple(keys)}
        spec = {
            "path": str(path),
            "format": opened.format,
            "encoding": opened.encoding,
            "fields": schema.fields_to_dicts(self.fields),
            "identifier": self.registry.identifier_field,
            "pairs": self.pairs,
            "width": self.width,
            "language": translation.get_language() or "",
            "sealing": sealing,
        }
        for kind, payload in io_worker.stream(spec):
            if kind == "rows":
                yield from payload
            elif kind == "decode":
                raise UnicodeDecodeError(*payload)
            elif kind == "csv":
                raise csv.Error(payload)

    def write(self, rows: Iterator[tuple[int, dict, Any]]) -> None:
        """Hand the clean rows to the engine in one transaction; roll back if any row was bad."""
        report = self.report
        engine_error = None
        try:
            with bulk.sqlite_bulk_cache(), transaction.atomic():
                written = services.bulk_create_records(
                    self.registry,
                    rows,
                    actor=self.actor,
                    source=self.source,
                    batch_size=self.batch_size,
                    validate=False,
                )
                if report.errors:
                    transaction.set_rollback(True)
                else:
                    report.imported = written
                    audit.record(
                        "registry.import",
                        actor=self.actor,
                        target=self.registry,
                        detail=_audit_detail(report, self.source),
                    )
        except schema.RecordValidationError as exc:
            engine_error = exc
        except services.NotAuthoritative as exc:
            report.refused = True
            self.error(0, "", str(exc))
            return
        if engine_error is not None:
            # The engine found rows clashing with stored records; it stopped writing at the first
            # one and checked every row it was given. Rows it was not given yet are checked here.
            self.writing = False
            for _row in rows:
                pass
            self.engine_errors(engine_error)

    def rows(self, items, progress, total) -> Iterator[tuple[int, dict, Any]]:
        """Yield (line, cleaned, prepared or None) for the engine while the file is clean; validate to the end."""
        report = self.report
        unique = self.unique
        seen = self.seen
        by_name = self.by_name
        scope_field = self.scope_field
        rule_field = self.rule_field
        first_field = self.pairs[0][1]
        batch: list[tuple[int, dict, Any]] = []
        try:
            for line, cleaned, errors, raw, prepared in items:
                report.rows += 1
                if errors:
                    for name, message in errors:
                        known = name if name in by_name else ""
                        self.error(line, known, message, raw.get(name) if raw and known else None)
                    continue
                bad = False
                for name in unique:
                    value = cleaned.get(name)
                    if value is None:
                        continue
                    key = str(value)
                    first = seen[name].get(key)
                    if first is None:
                        seen[name][key] = line
                    else:
                        self.error(
                            line,
                            name,
                            _("%(label)s：与第 %(line)d 行重复") % {"label": by_name[name].label, "line": first},
                            value,
                        )
                        bad = True
                if scope_field:
                    division = str(cleaned.get(scope_field) or "")
                    allowed = self.scope_ok.get(division)
                    if allowed is None:
                        allowed = self.scope_ok[division] = services.can_write(
                            self.registry, first_field, self.source, division_code=division
                        )
                    if not allowed:
                        self.error(
                            line,
                            scope_field,
                            _("%(label)s：不在 %(department)s 的管辖区划内，无权写入")
                            % {"label": by_name[scope_field].label, "department": self.source.name},
                            division,
                        )
                        bad = True
                if rule_field and not self.rule_allows(cleaned.get(rule_field)):
                    self.error(
                        line,
                        rule_field,
                        _("%(department)s 不是%(label)s为“%(value)s”的记录的权威来源，无权导入")
                        % {
                            "department": self.source.name,
                            "label": by_name[rule_field].label,
                            "value": by_name[rule_field].choice_label(cleaned.get(rule_field)),
                        },
                        cleaned.get(rule_field),
                    )
                    bad = True
                if bad:
                    continue
                batch.append((line, cleaned, prepared))
                if len(batch) >= self.batch_size:
                    yield from self.flush(batch)
                    batch = []
                    if progress:
                        progress(report.rows, total)
        except UnicodeDecodeError as exc:
            self.error(
                0,
                "",
                _("文件编码无法识别（约第 %(row)d 行）：%(error)s；请另存为 UTF-8 或指定编码")
                % {"row": report.rows + 2, "error": exc.reason},
            )
        except csv.Error as exc:
            self.error(0, "", _("CSV 格式错误：%(error)s") % {"error": exc})
        if batch:
            yield from self.flush(batch)
        if progress:
            progress(report.rows, report.rows)

    def rule_allows(self, value) -> bool:
        """Conditional authority: whether the source may write the mapped columns of a row with this
        discriminator value (decided once per value)."""
        allowed = self.rule_ok.get(value)
        if allowed is None:
            home = self.source.division.code
            allowed = self.rule_ok[value] = all(
                services.can_write(
                    self.registry, name, self.source, division_code=home, values={self.rule_field: value}
                )
                for name in self.column_of
            )
        return allowed

    def flush(self, batch: list[tuple[int, dict, Any]]) -> Iterator[tuple[int, dict, Any]]:
        """Check a batch's references; yield its rows to the engine, or check them against stored keys."""
        if self.references:
            self.check_references(batch)
        if self.writing:
            self.refresh_statistics()
            yield from batch
        else:
            self.check_existing(batch)

    def refresh_statistics(self) -> None:
        """On PostgreSQL, ANALYZE the record tables as the load grows (×4 each time).

        A fresh or small registry has no planner statistics, and the engine's per-batch lookup of
        existing keys (``digest IN (…)``) is then planned as a scan of every key of the field:
        quadratic over a large import (about 1–2 s per batch at a million keys). ANALYZE inside
        the transaction counts the rows it has inserted, and the lookups become index probes.
        """
        if connection.vendor != "postgresql" or self.report.rows < self.next_analyze:
            return
        self.next_analyze = self.report.rows * 4
        tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in (Record, RecordKey))
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {tables}")

    def check_references(self, batch: list[tuple[int, dict, Any]]) -> None:
        """Report reference values that name no live record of the referenced registry."""
        for f in self.references:
            wanted = {str(cleaned[f.name]) for _line, cleaned, _prepared in batch if cleaned.get(f.name)}
            if not wanted:
                continue
            found = services.live_uids(f.ref, wanted)
            for line, cleaned, _prepared in batch:
                value = cleaned.get(f.name)
                if value and str(value) not in found:
                    self.error(
                        line,
                        f.name,
                        _("%(label)s：信息库“%(ref)s”中没有该记录") % {"label": f.label, "ref": f.ref},
                        value,
                    )

    def check_existing(self, batch: list[tuple[int, dict, Any]]) -> None:
        """Report rows whose unique values are already held by stored records (via the blind index)."""
        key = blind_index_key() if self.unique else b""  # once per batch
        for name in self.unique:
            purpose = schema.key_purpose(self.registry.code, self.by_name[name])
            by_digest = {}
            for line, cleaned, _prepared in batch:
                value = cleaned.get(name)
                if value is not None and value != "":
                    by_digest[blind_index(str(value), purpose=purpose, key=key)] = (line, value)
            digests = list(by_digest)
            for start in range(0, len(digests), _QUERY_CHUNK):
                taken = RecordKey.objects.filter(
                    registry=self.registry, field=name, is_unique=True, digest__in=digests[start : start + _QUERY_CHUNK]
                ).values_list("digest", flat=True)
                for digest in taken:
                    line, value = by_digest[digest]
                    self.error(line, name, _existing_message(self.by_name[name]), value)

    def engine_errors(self, exc) -> None:
        """Add the engine's ``row N: field`` errors (N is the file line) with the offending values."""
        wanted: dict[str, set[int]] = {}
        parsed = []
        for key, messages in exc.errors.items():
            row, _sep, name = str(key).partition(":")
            name = name.strip()
            try:
                line = int(row.replace("row", "").strip())
            except ValueError:
                line, name = 0, str(key)
            parsed.append((line, name, messages))
            if name in self.seen:
                wanted.setdefault(name, set()).add(line)
        values: dict[tuple[str, int], str] = {}
        for name, lines in wanted.items():
            # Each clashing value is the first (and only) occurrence of that value in the file.
            for value, line in self.seen[name].items():
                if line in lines:
                    values[name, line] = value
        for line, name, messages in parsed:
            for message in messages:
                self.error(line, name if name in self.by_name else "", message, values.get((name, line)))
        self.report.errors.sort(key=lambda e: e.line)


def _existing_message(f: schema.FieldDef) -> str:
    """The message for a unique value already held by a stored record."""
    return _("%(label)s：该值已存在于信息库的其他记录") % {"label": f.label}


# --- export ----------------------------------------------------------------------------------


def _export_department(actor, source):
    """The department an export is made for: ``source`` (instance or code) or the actor's department."""
    if isinstance(source, str) and source:
        code = source
        source = Organization.objects.filter(code=code).first()
        if source is None:
            raise PermissionDenied(_("部门 %(code)s 不存在") % {"code": code})
    department = services.department_of(actor)
    if department is None and actor is not None and not isinstance(actor, str) and not services.is_admin(actor):
        raise PermissionDenied(_("只有部门工作人员可以导出数据"))
    if department is not None and source is not None and department.pk != source.pk:
        raise PermissionDenied(
            _("工作人员只能以本部门（%(own)s）名义导出，不能代表 %(other)s")
            % {"own": department.name, "other": source.name}
        )
    return department or source


def _hidden_personal(department, fields: list[schema.FieldDef]) -> list[schema.FieldDef]:
    """The personal fields the department may NOT export unmasked (none for authorities and data administrators)."""
    if department is not None and department.kind == services.DATA_ADMIN_KIND:
        return []
    mine = {department.kind, department.code} - {""} if department is not None else set()
    return [f for f in fields if f.is_personal and not mine.intersection(f.authorities)]


def _actor_label(actor) -> str:
    """The actor as the reader named in the access log."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor[:150]
    return (actor.get_username() if hasattr(actor, "get_username") else str(actor))[:150]


def _cell(value) -> str:
    """A value as CSV/xlsx text (JSON for structures, true/false for booleans)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def export_records(
    registry,
    out,
    *,
    fmt: str = "csv",
    actor,
    filters: dict | None = None,
    unmask: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    labels: bool = False,
    with_uid: bool = False,
    source=None,
) -> int:
    """Write the current values of a registry's live records to ``out``; returns the number written.

    ``out`` is a path or a file object (binary; text also works for CSV and JSON Lines). The reader
    is ``source`` (an Organization or its code, for system actors) or the actor's department; it
    must be allowed to read the registry and sees only its division's records when the registry is
    scoped by division. Personal fields are masked unless ``unmask``, which needs authority over
    every personal field or the data administrator kind. ``filters`` are those of
    ``services.search_records``. Every export is audited and each exported record gets an access
    log entry (channel ``export``), so citizens see bulk reads of their data too.
    """
    registry = _resolve_registry(registry)
    fmt = (fmt or "csv").lower()
    if fmt not in EXPORT_FORMATS:
        raise ValueError(_("不支持的导出格式：%(format)s（支持 csv、xlsx、json）") % {"format": fmt})
    fields = services.registry_fields(registry)
    department = _export_department(actor, source)
    reader = actor if services.is_admin(actor) or department is None else department
    scope = services.reader_scope(registry, reader)
    refusal = ""
    if scope is None:
        refusal = _("无权导出信息库“%(name)s”的数据") % {"name": registry.name}
    elif unmask:
        hidden = _hidden_personal(department, fields)
        if hidden:
            refusal = _(
                "无权导出未脱敏的个人信息字段：%(fields)s（仅限这些字段的权威来源部门或数据管理部门）"
            ) % {"fields": "、".join(f.label for f in hidden)}
    if refusal:
        with transaction.atomic():
            audit.record(
                "registry.export",
                actor=actor,
                target=registry,
                outcome="denied",
                detail={"unmask": unmask, "department": department.code if department else "", "reason": refusal},
            )
        raise PermissionDenied(refusal)
    names = [f.name for f in fields]
    header = [f.label if labels else f.name for f in fields]
    if with_uid:
        header = [UID_COLUMN, *header]
    masks = [] if unmask else [f for f in fields if f.is_personal]
    identifier = next((f for f in fields if f.name == registry.identifier_field), None)
    subject_type = identifier.type if identifier is not None and identifier.type in ("resident_id", "uscc") else ""
    log = _AccessLogger(registry, department, _actor_label(actor), names, unmask)
    total = None
    count = 0

    def rows() -> Iterator[tuple[Any, dict]]:
        nonlocal count
        for record in _records(registry, filters, scope, department):
            values = services.record_values_now(record)
            digest = ""
            if subject_type and values.get(identifier.name):
                digest = blind_index(str(values[identifier.name]), purpose=subject_type)
            for f in masks:
                value = values.get(f.name)
                if value is not None and value != "":
                    values[f.name] = schema.mask_value(f, value)
            log.add(record.pk, digest)
            count += 1
            if progress and count % BATCH_SIZE == 0:
                progress(count, total)
            yield record, values

    writer = {"csv": _write_csv, "xlsx": _write_xlsx, "json": _write_jsonl}[fmt]
    with transaction.atomic():
        writer(out, header, names, rows(), with_uid)
        log.flush()
        audit.record(
            "registry.export",
            actor=actor,
            target=registry,
            detail={
                "format": fmt,
                "records": count,
                "unmask": unmask,
                "department": department.code if department else "",
                "filters": {k: str(v) for k, v in (filters or {}).items()},
            },
        )
    if progress:
        progress(count, count)
    return count


def _records(registry, filters: dict | None, scope: str, department) -> Iterator[Record]:
    """The live records to export, in id order, streamed (filtered ones through search_records)."""
    if filters:
        division = department.division.code if scope and department is not None else ""
        offset = 0
        while True:
            page, _total = services.search_records(
                registry, filters=filters, order_by="", offset=offset, limit=services.MAX_PAGE,
                division_code=division,
            )
            yield from page
            if len(page) < services.MAX_PAGE:
                return
            offset += len(page)
    queryset = Record.objects.filter(registry=registry, deleted_at__isnull=True)
    if scope:
        queryset = queryset.filter(division_code__startswith=scope)
    yield from queryset.only("id", "uid", "data", "sealed").order_by("id").iterator(chunk_size=BATCH_SIZE)


class _AccessLogger:
    """Access-log rows (谁查了我的数据) for exported records, written in batches."""

    def __init__(self, registry, department, reader: str, names: list[str], unmask: bool):
        self.registry = registry
        self.department = department
        self.reader = reader
        self.fields = sorted(names) + (["<unmasked>"] if unmask else [])
        self.purpose = _("批量导出（未脱敏）") if unmask else _("批量导出")
        self.pending: list[AccessLog] = []

    def add(self, record_id: int, digest: str) -> None:
        """Note that a record was exported."""
        self.pending.append(
            AccessLog(
                registry=self.registry,
                record_id=record_id,
                subject_digest=digest,
                reader_org=self.department,
                reader=self.reader,
                channel="export",
                purpose=self.purpose,
                fields=self.fields,
                at=timezone.now(),
            )
        )
        if len(self.pending) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        """Write the pending rows."""
        if self.pending:
            AccessLog.objects.bulk_create(self.pending, batch_size=500)
            self.pending = []


def _text_out(out, *, bom: bool) -> tuple[IO[str], Callable[[], None]]:
    """A text stream for ``out`` (path, binary or text file) and how to finish with it."""
    if isinstance(out, str | os.PathLike):
        stream = open(out, "w", encoding="utf-8-sig" if bom else "utf-8", newline="")  # noqa: SIM115
        return stream, stream.close
    if isinstance(out, io.TextIOBase):
        return out, out.flush
    wrapper = io.TextIOWrapper(out, encoding="utf-8-sig" if bom else "utf-8", newline="")

    def finish():
        wrapper.flush()
        wrapper.detach()

    return wrapper, finish


def _write_csv(out, header, names, rows: Iterable[tuple[Any, dict]], with_uid: bool) -> None:
    """CSV with a header row, UTF-8 with BOM (Excel-friendly)."""
    stream, finish = _text_out(out, bom=True)
    try:
        writer = csv.writer(stream)
        writer.writerow(header)
        for record, values in rows:
            cells = [_cell(values.get(name)) for name in names]
            writer.writerow([str(record.uid), *cells] if with_uid else cells)
    finally:
        finish()


def _write_jsonl(out, header, names, rows: Iterable[tuple[Any, dict]], with_uid: bool) -> None:
    """JSON Lines: one object of field → value per record (absent values left out)."""
    stream, finish = _text_out(out, bom=False)
    try:
        for record, values in rows:
            obj = {UID_COLUMN: str(record.uid)} if with_uid else {}
            obj.update((name, values[name]) for name in names if values.get(name) not in (None, ""))
            stream.write(json.dumps(obj, ensure_ascii=False, default=str))
            stream.write("\n")
    finally:
        finish()


def _write_xlsx(out, header, names, rows: Iterable[tuple[Any, dict]], with_uid: bool) -> None:
    """A streaming xlsx workbook; values as text so long digit strings (ID numbers) stay exact."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(header)
    for record, values in rows:
        cells = [_cell(values.get(name)) for name in names]
        sheet.append([str(record.uid), *cells] if with_uid else cells)
    workbook.save(out)


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """Parse ``列名=字段`` pairs (from the command line) into a mapping."""
    mapping = {}
    for pair in pairs:
        column, sep, name = pair.partition("=")
        if not sep or not column.strip():
            raise ValueError(_("映射应写成 列名=字段名（实际为“%(pair)s”）") % {"pair": pair})
        mapping[column.strip()] = name.strip()
    return mapping
