"""The PDF form of a licence (电子证照版式文件): a printable A4/A5 page with a QR code and a visible seal.

One page drawn from the licence type's ``layout`` (:func:`resolve_layout`; an empty layout gives
the default): the title (证照名称) and its English name, the licence number, the holder, the data
items in the layout's order, the validity, the issuing department (发证机关) with the date, the
licence identifier (证照标识) and version at the bottom, and the licence's QR code
(:mod:`dgov.licenses.qr`) bottom-right. The seal — a red circle, a five-pointed star, the issuer's
name around the upper arc and "电子证照专用章" below, all vector graphics — is the appearance of
the empty signature field :data:`SEAL_FIELD` placed over the issuer's name, so the signature that
:mod:`dgov.licenses.pdfsign` puts into that field *is* the visible seal (it multiplies over the
name like ink). A licence that is not valid when drawn gets a large watermark with its status.

**Fonts.** Chinese text is set in Noto Serif SC (the seal in Noto Sans SC), OpenType CFF fonts
under the SIL Open Font License shipped by the PyPI package ``pylopdf-fonts-zh-cn``; only the
glyphs used are embedded (CID-keyed subsets with a ToUnicode map, so text can be searched and
copied), shaped with HarfBuzz through pyHanko's ``GlyphAccumulator`` (``pyHanko[opentype]``:
fontTools + uharfbuzz). Nothing is downloaded at run time.

**Metadata.** The document's XMP carries ``dgov:licenceIdentifier``, ``dgov:credentialId`` and
``dgov:licenceVersion`` (namespace :data:`XMP_NS`), beside ``dc:title``, ``dc:creator`` (the
issuer) and ``pdf:Keywords``; :mod:`dgov.licenses.pdfsign` reads them back from the signed revision.

The page is always drawn in Chinese (zh-Hans): it is the licence itself, not interface text.
"""

from __future__ import annotations

import datetime
import io
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import segno
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.metadata import model as xmp
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign.fields import SigFieldSpec, VisibleSigSettings, append_signature_field

__all__ = [
    "SEAL_FIELD",
    "XMP_NS",
    "Document",
    "Layout",
    "LicencePage",
    "layout_problems",
    "licence_page",
    "render",
    "render_document",
    "resolve_layout",
]

SEAL_FIELD = "LicenceSeal"
XMP_NS = "urn:dgov:xmp:licence#"
XMP_IDENTIFIER = xmp.ExpandedName(ns=XMP_NS, local_name="licenceIdentifier")
XMP_CREDENTIAL = xmp.ExpandedName(ns=XMP_NS, local_name="credentialId")
XMP_VERSION = xmp.ExpandedName(ns=XMP_NS, local_name="licenceVersion")

MM = 72 / 25.4
PAGE_SIZES = {"A4": (210.0, 297.0), "A5": (148.0, 210.0)}  # portrait, in mm
MIN_FONT_SIZE = 8.0
RED = (0.85, 0.08, 0.08)
FRAME = (0.55, 0.12, 0.10)
INK = (0.08, 0.08, 0.08)
GREY = (0.35, 0.35, 0.35)

pdf_name = generic.NameObject

# fontTools narrates every subset it makes at INFO.
logging.getLogger("fontTools").setLevel(logging.WARNING)


# --- layout ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """A resolved printable layout (版式): page, texts and the order of the data items."""

    size: str = "A4"
    orientation: str = "portrait"
    title: str = ""
    subtitle: str = ""
    items: tuple[tuple[str, str], ...] = ()  # (item name, label) in print order
    holder_label: str = ""
    holder_id_label: str = ""
    show_holder_id: bool = True
    font_size: float = 13.0
    seal_mm: float = 40.0
    qr_mm: float = 34.0
    note: str = ""

    @property
    def page_size(self) -> tuple[float, float]:
        """Width and height of the page in points."""
        width, height = PAGE_SIZES[self.size]
        if self.orientation == "landscape":
            width, height = height, width
        return width * MM, height * MM


_LAYOUT_KEYS = {
    "size",
    "orientation",
    "title",
    "subtitle",
    "items",
    "holder_label",
    "holder_id_label",
    "show_holder_id",
    "font_size",
    "seal_mm",
    "qr_mm",
    "note",
}


def layout_problems(layout: Any, items: Sequence[Mapping[str, Any]]) -> list[str]:
    """What is wrong with a layout document for a type with ``items`` (empty when it is usable as is).

    :func:`resolve_layout` never fails — it ignores what it cannot use — so forms and APIs that
    edit a type's layout call this to tell the author.
    """
    if layout in (None, ""):
        return []
    if not isinstance(layout, Mapping):
        return [_("版式应为 JSON 对象")]
    problems = [_("未知的版式项：%(key)s") % {"key": key} for key in layout if key not in _LAYOUT_KEYS]
    if "size" in layout and layout["size"] not in PAGE_SIZES:
        problems.append(_("纸张尺寸应为 A4 或 A5"))
    if "orientation" in layout and layout["orientation"] not in ("portrait", "landscape"):
        problems.append(_("方向应为 portrait（纵向）或 landscape（横向）"))
    known = {item.get("name") for item in items}
    for entry in layout.get("items") or []:
        name = entry.get("name") if isinstance(entry, Mapping) else entry
        if name not in known:
            problems.append(_("版式中的数据项 %(name)s 不在证照类型中") % {"name": name})
    for key, low, high in (("font_size", 9, 18), ("seal_mm", 25, 60), ("qr_mm", 22, 60)):
        if key in layout and _number(layout[key], low, high) is None:
            problems.append(_("%(key)s 应在 %(low)s 至 %(high)s 之间") % {"key": key, "low": low, "high": high})
    for key in ("title", "subtitle", "holder_label", "holder_id_label", "note"):
        if key in layout and not isinstance(layout[key], str):
            problems.append(_("%(key)s 应为文本") % {"key": key})
    return problems


def _number(value: Any, low: float, high: float) -> float | None:
    """``value`` as a float within [low, high], else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if low <= number <= high else None


def _text(value: Any, default: str, limit: int = 200) -> str:
    """A layout text: ``value`` when it is a non-empty string, else ``default``."""
    return value.strip()[:limit] if isinstance(value, str) and value.strip() else default


def resolve_layout(licence_type) -> Layout:
    """The layout of a licence type: its ``layout`` document over the defaults; unusable values are ignored.

    Keys: ``size`` (A4/A5), ``orientation`` (portrait/landscape), ``title``, ``subtitle``,
    ``items`` (names, or ``{name, label}``, in print order; default: every item of the type),
    ``holder_label``, ``holder_id_label``, ``show_holder_id``, ``font_size`` (9–18 pt),
    ``seal_mm`` (25–60), ``qr_mm`` (22–60), ``note`` (a line above the identifier).
    """
    raw = licence_type.layout if isinstance(licence_type.layout, Mapping) else {}
    by_name = {item.get("name"): item for item in licence_type.items or [] if isinstance(item, Mapping)}
    chosen: list[tuple[str, str]] = []
    for entry in raw.get("items") or by_name:
        name = entry.get("name") if isinstance(entry, Mapping) else entry
        if name not in by_name or any(name == seen for seen, _label in chosen):
            continue
        label = entry.get("label") if isinstance(entry, Mapping) else None
        chosen.append((name, _text(label, str(by_name[name].get("label") or name), 40)))
    person = licence_type.holder_kind == "person"
    return Layout(
        size=raw.get("size") if raw.get("size") in PAGE_SIZES else "A4",
        orientation="landscape" if raw.get("orientation") == "landscape" else "portrait",
        title=_text(raw.get("title"), licence_type.name, 60),
        subtitle=_text(raw.get("subtitle"), licence_type.name_en or "", 120),
        items=tuple(chosen),
        holder_label=_text(raw.get("holder_label"), _("持证人") if person else _("名称"), 40),
        holder_id_label=_text(raw.get("holder_id_label"), _("公民身份号码") if person else _("统一社会信用代码"), 40),
        show_holder_id=raw.get("show_holder_id") is not False,
        font_size=_number(raw.get("font_size"), 9, 18) or 13.0,
        seal_mm=_number(raw.get("seal_mm"), 25, 60) or 40.0,
        qr_mm=_number(raw.get("qr_mm"), 22, 60) or 34.0,
        note=_text(raw.get("note"), "", 200),
    )


# --- what the page says --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LicencePage:
    """Everything one licence page shows, already formatted (see :func:`licence_page`)."""

    identifier: str
    credential_id: str
    version: int
    title: str
    subtitle: str
    number: str
    rows: tuple[tuple[str, str], ...]
    issuer_name: str
    issued_on: str
    qr_payload: str
    note: str = ""
    watermark: str = ""
    keywords: tuple[str, ...] = field(default=())


def _date(value: datetime.date) -> str:
    """A date the way Chinese licences print it: 2026年5月20日."""
    return _("%(y)d年%(m)d月%(d)d日") % {"y": value.year, "m": value.month, "d": value.day}


def _format_value(item: Mapping[str, Any], value: Any) -> str:
    """One data item's value for print (dates, yes/no, enum labels)."""
    if value in (None, ""):
        return ""
    kind = item.get("type", "string")
    if kind == "date":
        try:
            return _date(datetime.date.fromisoformat(str(value)))
        except ValueError:
            return str(value)
    if kind == "boolean":
        return _("是") if value is True or str(value).lower() in ("true", "1") else _("否")
    if kind == "enum":
        for choice in item.get("choices") or []:
            if isinstance(choice, Mapping) and str(choice.get("value")) == str(value):
                return str(choice.get("label") or value)
    return str(value)


def licence_page(licence, credential, data: Mapping[str, Any], *, qr_payload: str, layout: Layout) -> LicencePage:
    """The formatted contents of a licence's page for one credential (version) and its decrypted data."""
    with translation.override("zh-hans"):
        items = {item.get("name"): item for item in licence.licence_type.items or []}
        rows: list[tuple[str, str]] = [(layout.holder_label, licence.holder_name)]
        if layout.show_holder_id:
            rows.append((layout.holder_id_label, licence.holder_id))
        for name, label in layout.items:
            text = _format_value(items.get(name, {}), data.get(name))
            if text:
                rows.append((label, text))
        if licence.valid_until:
            validity = _("%(start)s至%(end)s") % {
                "start": _date(licence.valid_from),
                "end": _date(licence.valid_until),
            }
        else:
            validity = _("%(start)s起长期有效") % {"start": _date(licence.valid_from)}
        rows.append((_("有效期限"), validity))
        status = {"revoked": _("已撤销"), "suspended": _("已暂停")}.get(licence.status, "")
        if not status and credential.superseded_at is not None:
            status = _("已被新版本取代")
        issued = timezone.localtime(credential.issued_at).date()
        return LicencePage(
            identifier=licence.identifier,
            credential_id=credential.credential_id,
            version=credential.version,
            title=layout.title,
            subtitle=layout.subtitle,
            number=licence.number,
            rows=tuple(rows),
            issuer_name=licence.issuer.name,
            issued_on=_date(issued),
            qr_payload=qr_payload,
            note=layout.note,
            watermark=status,
            keywords=(licence.identifier, credential.credential_id, licence.licence_type.code),
        )


# --- drawing -------------------------------------------------------------------------------------------


@cache
def _font_file(face: str) -> bytes:
    """The bytes of a bundled font ("serif" or "sans"), read once per process."""
    import pylopdf_fonts_zh_cn as fonts

    path: Path = fonts.serif_path() if face == "serif" else fonts.sans_path()
    return path.read_bytes()


def _num(value: float) -> bytes:
    """A number for a content stream."""
    return (f"{value:.3f}".rstrip("0").rstrip(".") or "0").encode("ascii")


def _rgb(color: tuple[float, float, float], *, stroke: bool = False) -> bytes:
    """Set the fill (or stroke) colour."""
    return b" ".join(_num(c) for c in color) + (b" RG" if stroke else b" rg")


class _Subsetter(GlyphAccumulator):
    """pyHanko's glyph accumulator, minus the OpenType layout tables before subsetting.

    Shaping (HarfBuzz) works on the font's own bytes, so the subset never needs GSUB/GPOS/GDEF;
    pyHanko drops them from the embedded subset anyway, but fontTools would first decode them
    (most of a second for a CJK font).
    """

    def prepare_write(self):
        """Drop the layout tables, then embed the subset."""
        for tag in ("GSUB", "GPOS", "GDEF", "BASE", "JSTF"):
            if tag in self.tt:
                del self.tt[tag]
        super().prepare_write()


class _Fonts:
    """The embedded fonts of one document (subsets collected as text is shaped)."""

    RESOURCE = {"serif": "/FS", "sans": "/FH"}

    def __init__(self, writer: PdfFileWriter):
        self.writer = writer
        self.engines: dict[str, GlyphAccumulator] = {}
        self._widths: dict[tuple[str, str], float] = {}

    def engine(self, face: str) -> GlyphAccumulator:
        """The glyph accumulator of ``face``, created on first use."""
        if face not in self.engines:
            self.engines[face] = _Subsetter(
                self.writer, io.BytesIO(_font_file(face)), font_size=12, bcp47_lang_code="zh-CN"
            )
        return self.engines[face]

    def width(self, face: str, text: str, size: float) -> float:
        """The advance width of ``text`` at ``size`` points."""
        key = (face, text)
        if key not in self._widths:
            self._widths[key] = self.engine(face).shape(text, with_actual_text=False).x_advance
        return self._widths[key] * size

    def resources(self, faces: Sequence[str] | None = None) -> generic.DictionaryObject:
        """A /Font resource dictionary of the faces used."""
        faces = faces or list(self.engines)
        return generic.DictionaryObject(
            {pdf_name(self.RESOURCE[face]): self.engine(face).as_resource() for face in faces}
        )


class _Ops:
    """A content stream under construction."""

    def __init__(self, fonts: _Fonts):
        self.fonts = fonts
        self.parts: list[bytes] = []

    def add(self, *ops: bytes) -> None:
        """Append raw operators."""
        self.parts.extend(ops)

    def data(self) -> bytes:
        """The stream's bytes."""
        return b"\n".join(self.parts)

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        size: float,
        face: str = "serif",
        color=INK,
        align: str = "left",
        bold: bool = False,
        angle: float = 0.0,
    ) -> float:
        """Draw one line of text with its baseline at (x, y) (left, centre or right aligned); returns its width."""
        if not text:
            return 0.0
        width = self.fonts.width(face, text, size)
        shift = {"left": 0.0, "center": width / 2, "right": width}[align]
        cos, sin = math.cos(angle), math.sin(angle)
        x0, y0 = x - shift * cos, y - shift * sin
        shaped = self.fonts.engine(face).shape(text)
        mode = b"2 Tr " + _num(size * 0.025) + b" w " + _rgb(color, stroke=True) if bold else b"0 Tr"
        self.add(
            b"BT",
            _rgb(color),
            mode,
            self.fonts.RESOURCE[face].encode("ascii") + b" " + _num(size) + b" Tf",
            b" ".join(_num(v) for v in (cos, sin, -sin, cos, x0, y0)) + b" Tm",
            shaped.graphics_ops,
            b"ET",
        )
        return width

    def rect(self, x: float, y: float, w: float, h: float, *, fill=None, stroke=None, width: float = 1.0) -> None:
        """A rectangle, filled and/or stroked."""
        ops = [b"q", _num(width) + b" w"]
        if fill:
            ops.append(_rgb(fill))
        if stroke:
            ops.append(_rgb(stroke, stroke=True))
        paint = b"B" if fill and stroke else (b"f" if fill else b"S")
        ops += [b" ".join(_num(v) for v in (x, y, w, h)) + b" re " + paint, b"Q"]
        self.add(*ops)

    def circle(self, cx: float, cy: float, r: float) -> bytes:
        """The path of a circle (four Bézier arcs)."""
        k = 0.5523 * r
        pts = [
            (cx + r, cy, b"m"),
            (cx + r, cy + k, cx + k, cy + r, cx, cy + r, b"c"),
            (cx - k, cy + r, cx - r, cy + k, cx - r, cy, b"c"),
            (cx - r, cy - k, cx - k, cy - r, cx, cy - r, b"c"),
            (cx + k, cy - r, cx + r, cy - k, cx + r, cy, b"c"),
        ]
        return b" ".join(b" ".join(_num(v) for v in p[:-1]) + b" " + p[-1] for p in pts)


def _wrap(measure: Callable[[str], float], text: str, width: float) -> list[str]:
    """Break ``text`` into lines no wider than ``width``: between Chinese characters, at spaces in Latin text."""
    lines: list[str] = []
    for paragraph in str(text).splitlines() or [""]:
        line = ""
        for token in re.findall(r"[A-Za-z0-9@._%+\-/:#()]+|\s+|.", paragraph):
            if measure(line + token) <= width:
                line += token
                continue
            if line.strip():
                lines.append(line.rstrip())
            token = token.lstrip()
            while token and measure(token) > width:
                low, high = 1, len(token)  # the longest prefix that fits (at least one character)
                while low < high:
                    middle = (low + high + 1) // 2
                    low, high = (middle, high) if measure(token[:middle]) <= width else (low, middle - 1)
                lines.append(token[:low])
                token = token[low:]
            line = token
        lines.append(line.rstrip())
    return lines


def _draw_seal(ops: _Ops, d: float, issuer: str, label: str | None = None, face: str = "sans") -> None:
    """The seal in a d×d box: ring, star, the issuer's name around the top, ``label`` ("电子证照专用章") below."""
    r = d / 2
    ring = d * 0.028
    ops.add(b"q /GM gs", _rgb(RED), _rgb(RED, stroke=True), _num(ring) + b" w")
    ops.add(ops.circle(r, r, r - ring / 2) + b" S")
    # The star: five points, inner radius by the golden ratio.
    star_r, inner = d * 0.16, d * 0.16 * 0.382
    points = []
    for i in range(10):
        radius = star_r if i % 2 == 0 else inner
        angle = math.pi / 2 + i * math.pi / 5
        points.append((r + radius * math.cos(angle), r + radius * math.sin(angle)))
    path = [_num(points[0][0]) + b" " + _num(points[0][1]) + b" m"]
    path += [_num(x) + b" " + _num(y) + b" l" for x, y in points[1:]]
    ops.add(b" ".join(path) + b" h f")
    # The issuer's name along the upper arc, each character upright towards the rim.
    name = issuer.strip()[:24] or "—"
    arc = r * 0.66 * math.radians(240)  # room along the upper arc at about the text's middle
    size = min(d * 0.14, arc / (len(name) * 1.15))
    baseline = r - ring - d * 0.03 - size * 0.88
    span = min(len(name) * size * 1.12 / baseline, math.radians(250))
    step = span / len(name)
    for i, char in enumerate(name):
        theta = math.pi / 2 + span / 2 - (i + 0.5) * step
        rotation = theta - math.pi / 2
        width = ops.fonts.width(face, char, size)
        x = r + baseline * math.cos(theta) - (width / 2) * math.cos(rotation)
        y = r + baseline * math.sin(theta) - (width / 2) * math.sin(rotation)
        ops.text(x, y, char, size=size, face=face, color=RED, bold=True, angle=rotation)
    label = _("电子证照专用章") if label is None else label
    ops.text(r, r - d * 0.29, label, size=d * 0.085, face=face, color=RED, bold=True, align="center")
    ops.add(b"Q")


def _draw_qr(ops: _Ops, x: float, y: float, size: float, payload: str) -> None:
    """The QR code of ``payload`` (error correction M) as filled modules on a white quiet zone."""
    code = segno.make_qr(payload, error="m", boost_error=False)
    matrix = code.matrix
    count = len(matrix) + 8  # four modules of quiet zone on each side
    module = size / count
    properties = io.BytesIO()
    generic.DictionaryObject({pdf_name("/Payload"): generic.pdf_string(payload)}).write_to_stream(properties)
    ops.add(b"/DgovQR " + properties.getvalue() + b" BDC")
    ops.rect(x, y, size, size, fill=(1, 1, 1))
    runs = []
    for row_index, row in enumerate(matrix):
        top = y + size - (row_index + 4 + 1) * module
        col = 0
        while col < len(row):
            if row[col]:
                start = col
                while col < len(row) and row[col]:
                    col += 1
                runs.append(
                    b" ".join(_num(v) for v in (x + (start + 4) * module, top, (col - start) * module, module)) + b" re"
                )
            else:
                col += 1
    ops.add(b"q", _rgb((0, 0, 0)), *runs, b"f", b"Q", b"EMC")


def _fit_rows(fonts: _Fonts, rows, *, size: float, value_w: float, room: float):
    """Wrap the rows at the largest font size (down to 8 pt) that fits ``room``; the last resort truncates."""
    while True:
        line_h = size * 1.75
        wrapped = [
            (label, _wrap(lambda s, sz=size: fonts.width("serif", s, sz), value, value_w)) for label, value in rows
        ]
        height = sum(len(lines) * line_h + size * 0.5 for _label, lines in wrapped)
        if height <= room or size <= MIN_FONT_SIZE:
            break
        size = max(MIN_FONT_SIZE, size - 0.5)
    if height > room:  # still too long at the smallest size: shorten the longest values, keep every row
        wrapped = [(label, list(lines)) for label, lines in wrapped]
        cut: set[int] = set()
        while height > room:
            longest = max(range(len(wrapped)), key=lambda i: len(wrapped[i][1]))
            if len(wrapped[longest][1]) <= 1:
                break  # one line per row and still too many rows: the page overflows at the bottom
            wrapped[longest][1].pop()
            cut.add(longest)
            height -= line_h
        for i in cut:
            last = wrapped[i][1][-1]
            wrapped[i][1][-1] = last[: max(0, len(last) - 2)] + "……"
    return size, line_h, wrapped


def render(page: LicencePage, layout: Layout, *, now: datetime.datetime | None = None) -> bytes:
    """The unsigned PDF of one licence page, with the empty seal field :data:`SEAL_FIELD` over the issuer's name."""
    with translation.override("zh-hans"):
        return _render(page, layout, now or timezone.now())


def _render(page: LicencePage, layout: Layout, now: datetime.datetime) -> bytes:
    """:func:`render` in the page's language."""
    writer = PdfFileWriter(stream_xrefs=False)
    fonts = _Fonts(writer)
    ops = _Ops(fonts)
    width, height = layout.page_size
    scale = min(width, height) / (210 * MM)
    margin = 12 * MM * scale

    if page.watermark:
        ops.text(
            width / 2, height / 2, page.watermark, size=96 * scale, color=(0.97, 0.82, 0.82), align="center",
            angle=math.radians(30), face="sans", bold=True,
        )  # fmt: skip
    # Frame: a heavy outer and a fine inner rule.
    ops.rect(margin, margin, width - 2 * margin, height - 2 * margin, stroke=FRAME, width=2.2 * scale)
    inset = margin + 2.2 * MM * scale
    ops.rect(inset, inset, width - 2 * inset, height - 2 * inset, stroke=FRAME, width=0.6 * scale)

    # Title block.
    y = height - margin - 26 * MM * scale
    ops.text(width / 2, y, page.title, size=26 * scale, align="center", bold=True, color=INK)
    if page.subtitle:
        y -= 9 * MM * scale
        ops.text(width / 2, y, page.subtitle, size=10 * scale, align="center", color=GREY)
    y -= 12 * MM * scale
    ops.text(
        width - inset - 10 * MM * scale, y, _("编号：%(n)s") % {"n": page.number}, size=10.5 * scale, align="right"
    )

    # Footer geometry: the QR code bottom-right, the issuer and its seal left of it, the identifier below.
    qr = min(layout.qr_mm * MM, width * 0.3)
    seal = layout.seal_mm * MM * max(scale, 0.8)
    qr_x, qr_y = width - inset - 8 * MM * scale - qr, inset + 12 * MM * scale
    issuer_x = qr_x - 14 * MM * scale - seal / 2
    issuer_y = qr_y + qr * 0.55
    footer_top = max(issuer_y + seal / 2, qr_y + qr) + 6 * MM * scale

    # Body rows.
    size = layout.font_size * max(scale, 0.85)
    left = inset + 16 * MM * scale
    label_w = max(fonts.width("serif", label, size) for label, _value in page.rows)
    value_x = left + label_w + 6 * MM * scale
    value_w = width - inset - 16 * MM * scale - value_x
    if layout.orientation == "landscape":  # the rows run down beside the seal and the QR code
        name_w = fonts.width("serif", page.issuer_name, 12.5 * scale)
        value_w = issuer_x - max(seal, name_w) / 2 - 8 * MM * scale - value_x
        footer_top = inset + 18 * MM * scale
    top = y - 14 * MM * scale
    size, line_h, wrapped = _fit_rows(fonts, page.rows, size=size, value_w=value_w, room=top - footer_top)
    label_w = max(fonts.width("serif", label, size) for label, _value in page.rows)
    value_x = left + label_w + 6 * MM * scale
    y = top
    for label, lines in wrapped:
        ops.text(left, y, label, size=size, color=GREY)
        for line in lines:
            ops.text(value_x, y, line, size=size)
            y -= line_h
        y -= size * 0.5

    # Issuer and date; the seal (the signature field's appearance) goes over the name.
    ops.text(issuer_x, issuer_y + 10 * scale, _("发证机关"), size=9 * scale, color=GREY, align="center")
    ops.text(issuer_x, issuer_y - 6 * scale, page.issuer_name, size=12.5 * scale, align="center")
    ops.text(issuer_x, issuer_y - 24 * scale, page.issued_on, size=11 * scale, align="center")
    _draw_qr(ops, qr_x, qr_y, qr, page.qr_payload)
    ops.text(qr_x + qr / 2, qr_y - 5 * MM * scale, _("扫码核验真伪"), size=8 * scale, color=GREY, align="center")
    bottom = inset + 5 * MM * scale
    if page.note:
        ops.text(left, bottom + 11 * scale, page.note, size=8 * scale, color=GREY)
    identifier_line = _("证照标识：%(id)s　版本：%(v)s") % {"id": page.identifier, "v": page.version}
    ops.text(left, bottom, identifier_line, size=min(8 * scale, (qr_x - left - 4 * MM) / 52), color=GREY)

    # The seal appearance, drawn now so that its glyphs join the same font subset.
    seal_ops = _Ops(fonts)
    _draw_seal(seal_ops, seal, page.issuer_name)

    multiply = generic.DictionaryObject(
        {
            pdf_name("/GM"): generic.DictionaryObject(
                {pdf_name("/Type"): pdf_name("/ExtGState"), pdf_name("/BM"): pdf_name("/Multiply")}
            )
        }
    )
    resources = generic.DictionaryObject({pdf_name("/Font"): fonts.resources(), pdf_name("/ExtGState"): multiply})
    content = generic.StreamObject(stream_data=ops.data())
    content.compress()
    page_obj = PageObject(contents=writer.add_object(content), media_box=(0, 0, width, height), resources=resources)
    writer.insert_page(page_obj)

    _add_seal_field(
        writer,
        page=0,
        centre=(issuer_x, issuer_y),
        size=seal,
        label=_("电子证照签章"),
        resources=generic.DictionaryObject(
            {pdf_name("/Font"): fonts.resources(["sans"]), pdf_name("/ExtGState"): multiply}
        ),
        ops=seal_ops,
    )

    _set_metadata(writer, page, now)
    writer.root["/Lang"] = generic.pdf_string("zh-CN")
    writer.root["/ViewerPreferences"] = generic.DictionaryObject(
        {pdf_name("/DisplayDocTitle"): generic.BooleanObject(True)}
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _add_seal_field(
    writer: PdfFileWriter,
    *,
    page: int,
    centre: tuple[float, float],
    size: float,
    label: str,
    resources: generic.DictionaryObject,
    ops: _Ops,
) -> None:
    """The empty signature field the seal is signed into, on ``page`` around ``centre``, showing the drawn seal."""
    x, y = centre
    box = (x - size / 2, y - size / 2, x + size / 2, y + size / 2)
    append_signature_field(
        writer,
        SigFieldSpec(
            SEAL_FIELD,
            on_page=page,
            box=tuple(round(v, 2) for v in box),
            readable_field_name=label,
            visible_sig_settings=VisibleSigSettings(rotate_with_page=True, scale_with_page_zoom=True),
        ),
    )
    appearance = generic.StreamObject(
        {
            pdf_name("/Type"): pdf_name("/XObject"),
            pdf_name("/Subtype"): pdf_name("/Form"),
            pdf_name("/BBox"): generic.ArrayObject([generic.FloatObject(v) for v in (0, 0, size, size)]),
            pdf_name("/Resources"): resources,
        },
        stream_data=ops.data(),
    )
    appearance.compress()
    _seal_field(writer)["/AP"] = generic.DictionaryObject({pdf_name("/N"): writer.add_object(appearance)})


def _seal_field(writer: PdfFileWriter) -> generic.DictionaryObject:
    """The seal field's widget dictionary (field and widget are one object)."""
    for ref in writer.root["/AcroForm"]["/Fields"]:
        candidate = ref.get_object()
        if candidate.get("/T") == SEAL_FIELD:
            return candidate
    raise LookupError("the seal field was not created")  # pragma: no cover


def _describe(writer: PdfFileWriter, *, title: str, author: str, subject: str, keywords, now) -> Any:
    """Fill the writer's document metadata (title, author, subject, keywords, creator, date); returns it."""
    meta = writer.document_meta
    meta.title = title
    meta.author = author
    meta.subject = subject
    meta.keywords = list(keywords)
    meta.creator = "dgov"
    meta.created = now
    return meta


def _write_info(writer: PdfFileWriter) -> None:
    """An Info dictionary from the document metadata (pyHanko writes XMP and refreshes an existing Info from it)."""
    meta = writer.document_meta
    writer.set_info(
        generic.DictionaryObject(
            {
                pdf_name("/Title"): generic.TextStringObject(meta.title),
                pdf_name("/Author"): generic.TextStringObject(meta.author),
                pdf_name("/Subject"): generic.TextStringObject(meta.subject),
                pdf_name("/Keywords"): generic.TextStringObject(",".join(meta.keywords)),
                pdf_name("/Creator"): generic.TextStringObject("dgov"),
            }
        )
    )


def _set_metadata(writer: PdfFileWriter, page: LicencePage, now: datetime.datetime) -> None:
    """Document information and XMP: title, issuer, keywords and the dgov licence identifiers."""
    from lxml import etree

    etree.register_namespace("dgov", XMP_NS)
    meta = _describe(
        writer,
        title=f"{page.title} {page.number}",
        author=page.issuer_name,
        subject=_("电子证照 %(id)s") % {"id": page.identifier},
        keywords=page.keywords,
        now=now,
    )
    meta.xmp_extra = [
        xmp.XmpStructure.of(
            (XMP_IDENTIFIER, xmp.XmpValue(page.identifier)),
            (XMP_CREDENTIAL, xmp.XmpValue(page.credential_id)),
            (XMP_VERSION, xmp.XmpValue(str(page.version))),
        )
    ]
    _write_info(writer)


def read_identifiers(xmp_roots) -> dict[str, str]:
    """The dgov licence identifiers found in parsed XMP roots: {identifier, credential_id, version}."""
    found: dict[str, str] = {}
    names = {XMP_IDENTIFIER: "identifier", XMP_CREDENTIAL: "credential_id", XMP_VERSION: "version"}
    for root in xmp_roots:
        for name, value in root:
            if name in names and isinstance(value.value, str):
                key = names[name]
                if key in found and found[key] != value.value:
                    found[key] = "\x00conflict"
                else:
                    found[key] = value.value
    return found


# --- other documents of a department (决定书, 通知书) ---------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """An official document of one department (文书): letterhead, number, title, text, rows, date and seal.

    ``paragraphs`` come after the addressee and before ``rows`` (label, value); ``closing`` after
    them (e.g. the remedies: 行政复议 / 行政诉讼). ``seal_label`` is the text under the seal's star
    (empty for the department's own seal). ``keywords`` and ``subject`` go into the document
    information, so a document can be told apart without reading its page.
    """

    title: str
    number: str
    issuer_name: str
    issued_on: datetime.date
    addressee: str = ""
    paragraphs: tuple[str, ...] = ()
    rows: tuple[tuple[str, str], ...] = ()
    closing: tuple[str, ...] = ()
    seal_label: str = ""
    note: str = ""
    keywords: tuple[str, ...] = ()
    subject: str = ""


def render_document(document: Document, *, now: datetime.datetime | None = None) -> bytes:
    """The unsigned A4 PDF of a department's document, with the empty seal field :data:`SEAL_FIELD` over its name.

    Drawn with the licences' fonts and seal (:func:`render`'s machinery) in the manner of GB/T 9704
    (a red letterhead and rule, the number, the title, the text, the issuer and date bottom right
    under the seal); the text flows onto further pages when it is long, and the seal goes on the
    last one. Sign it with :func:`dgov.licenses.pdfsign.sign_pdf` as the issuing department.
    """
    with translation.override("zh-hans"):
        return _render_document(document, now or timezone.now())


def _render_document(doc: Document, now: datetime.datetime) -> bytes:
    """:func:`render_document` in Chinese."""
    writer = PdfFileWriter(stream_xrefs=False)
    fonts = _Fonts(writer)
    width, height = PAGE_SIZES["A4"][0] * MM, PAGE_SIZES["A4"][1] * MM
    left, right = 28 * MM, width - 26 * MM
    text_w = right - left
    top, bottom = height - 30 * MM, 30 * MM
    size = 13.0
    line_h = size * 1.8
    pages: list[_Ops] = [_Ops(fonts)]
    y = top

    def measure(text: str, at: float = size, face: str = "serif") -> float:
        return fonts.width(face, text, at)

    def room(needed: float) -> None:
        """Start a new page unless ``needed`` points fit above the bottom margin."""
        nonlocal y
        if y - needed < bottom:
            pages.append(_Ops(fonts))
            y = top

    # Letterhead (版头): the issuer in red, the number, a red rule.
    ops = pages[0]
    head = 24.0
    while head > 14 and measure(doc.issuer_name, head) > text_w:
        head -= 1
    y -= head
    ops.text(width / 2, y, doc.issuer_name, size=head, color=RED, align="center", bold=True)
    y -= 12 * MM
    ops.text(width / 2, y, doc.number, size=12.5, align="center")
    y -= 4 * MM
    ops.rect(left, y, text_w, 1.2, fill=RED)
    y -= 12 * MM
    for line in _wrap(lambda s: measure(s, 20.0), doc.title, text_w):
        ops.text(width / 2, y, line, size=20.0, align="center", bold=True)
        y -= 20.0 * 1.6
    y -= 4 * MM

    def paragraph(text: str, *, indent: bool = True) -> None:
        nonlocal y
        for line in _wrap(measure, ("\u3000\u3000" if indent else "") + text, text_w):
            room(line_h)
            pages[-1].text(left, y, line, size=size)
            y -= line_h

    if doc.addressee:
        paragraph(doc.addressee, indent=False)
    for text in doc.paragraphs:
        paragraph(text)
    if doc.rows:
        y -= size * 0.5
        label_w = max(measure(label + "：") for label, _value in doc.rows)
        value_x = left + 2 * size + label_w
        for label, value in doc.rows:
            lines = _wrap(measure, value or "—", right - value_x)
            room(line_h)
            pages[-1].text(left + 2 * size, y, label + "：", size=size, color=GREY)
            for line in lines:
                room(line_h)
                pages[-1].text(value_x, y, line, size=size)
                y -= line_h
        y -= size * 0.5
    for text in doc.closing:
        paragraph(text)

    # Signature block: the issuer and the date bottom right, the seal over the issuer's name.
    seal = 42 * MM
    room(seal * 0.55 + 20 * MM)
    name_size = 13.0
    block_x = right - max(measure(doc.issuer_name, name_size), seal) / 2 - 4 * MM
    name_y = y - 14 * MM
    pages[-1].text(block_x, name_y, doc.issuer_name, size=name_size, align="center")
    pages[-1].text(block_x, name_y - line_h, _date(doc.issued_on), size=name_size, align="center")
    seal_y = name_y + 4

    # Footer of every page: the note and the page count.
    count = len(pages)
    for number, page_ops in enumerate(pages, start=1):
        if doc.note:
            page_ops.text(left, bottom - 12 * MM, doc.note, size=8.5, color=GREY)
        if count > 1:
            page_ops.text(
                width / 2, bottom - 18 * MM, _("第 %(n)s 页 共 %(m)s 页") % {"n": number, "m": count}, size=9,
                color=GREY, align="center",
            )  # fmt: skip

    seal_ops = _Ops(fonts)
    # One face for the whole document: each embedded face costs a font parse and a subset (most of the time).
    _draw_seal(seal_ops, seal, doc.issuer_name, label=doc.seal_label, face="serif")
    multiply = generic.DictionaryObject(
        {
            pdf_name("/GM"): generic.DictionaryObject(
                {pdf_name("/Type"): pdf_name("/ExtGState"), pdf_name("/BM"): pdf_name("/Multiply")}
            )
        }
    )
    for page_ops in pages:
        content = generic.StreamObject(stream_data=page_ops.data())
        content.compress()
        resources = generic.DictionaryObject({pdf_name("/Font"): fonts.resources(), pdf_name("/ExtGState"): multiply})
        writer.insert_page(
            PageObject(contents=writer.add_object(content), media_box=(0, 0, width, height), resources=resources)
        )
    _add_seal_field(
        writer,
        page=count - 1,
        centre=(block_x, seal_y),
        size=seal,
        label=_("电子印章"),
        resources=generic.DictionaryObject(
            {pdf_name("/Font"): fonts.resources(["serif"]), pdf_name("/ExtGState"): multiply}
        ),
        ops=seal_ops,
    )

    _describe(
        writer,
        title=f"{doc.title} {doc.number}",
        author=doc.issuer_name,
        subject=doc.subject or doc.title,
        keywords=doc.keywords,
        now=now,
    )
    _write_info(writer)
    writer.root["/Lang"] = generic.pdf_string("zh-CN")
    writer.root["/ViewerPreferences"] = generic.DictionaryObject(
        {pdf_name("/DisplayDocTitle"): generic.BooleanObject(True)}
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
