"""The PDF form of a licence: page contents, the seal signature, the certificate chain, and PDF verification."""

import datetime
import io
from dataclasses import dataclass

import pytest
import segno
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata.xmp_xml import parse_xmp
from pyhanko.pdf_utils.misc import skip_over_whitespace
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from dgov.kernel.models import AuditRecord
from dgov.licenses import keys, pdf, pdfsign, qr, services
from dgov.licenses.models import IssuerKey, PdfCertificate

pytestmark = pytest.mark.django_db

HOLDER = "370102199001011231"


@pytest.fixture
def licence(marriage_type, civil):
    """A marriage certificate issued by the city 民政局."""
    return services.issue(
        marriage_type,
        issuer=civil["mz_city"],
        holder_name="张三",
        holder_id=HOLDER,
        data={"spouse_name": "李四", "registered_on": "2026-05-20", "remark": "双方自愿结婚，予以登记。"},
        actor="cli:test",
        number="J3701002026000001",
    )


@dataclass
class _Op:
    op: str
    args: list


def _operators(stream) -> list[_Op]:
    """The operators of a content stream with their operands (our streams use no inline images or booleans)."""
    data = io.BytesIO(stream.data)
    ops, args = [], []
    while True:
        skip_over_whitespace(data, error_on_end_of_stream=False)
        head = data.read(1)
        if not head:
            return ops
        if head.isalpha() or head in b"'\"*":
            word = head
            while (nxt := data.read(1)) and (nxt.isalpha() or nxt in b"*'\""):
                word += nxt
            data.seek(-1 if nxt else 0, io.SEEK_CUR)
            ops.append(_Op(word.decode(), args))
            args = []
        else:
            data.seek(-1, io.SEEK_CUR)
            args.append(generic.read_object(data, stream.container_ref))


def _page_operators(data: bytes):
    """The graphics operators of the first page."""
    reader = PdfFileReader(io.BytesIO(data))
    page = reader.root["/Pages"]["/Kids"][0].get_object()
    return _operators(page["/Contents"].get_object()), reader


def _actual_texts(operators) -> list[str]:
    """The text of every marked-content span (what the page says, as written)."""
    texts = []
    for op in operators:
        if op.op == "BDC" and isinstance(op.args[1], generic.DictionaryObject) and "/ActualText" in op.args[1]:
            texts.append(str(op.args[1]["/ActualText"]))
    return texts


def _qr_modules(operators) -> tuple[str, set[tuple[int, int]], int]:
    """(payload, dark cells, side) of the QR code drawn inside the ``/DgovQR`` marked content."""
    inside, rects, payload = False, [], ""
    for op in operators:
        if op.op == "BDC" and op.args[0] == "/DgovQR":
            inside, payload = True, str(op.args[1]["/Payload"])
        elif inside and op.op == "EMC":
            break
        elif inside and op.op == "re":
            rects.append([float(v) for v in op.args])
    background, modules = rects[0], rects[1:]
    x0, y0, size = background[0], background[1], background[2]
    side = len(segno.make_qr(payload, error="m", boost_error=False).matrix)
    unit = size / (side + 8)
    cells = set()
    for x, y, w, h in modules:
        row = round((y0 + size - y - h) / unit) - 4
        first = round((x - x0) / unit) - 4
        for col in range(first, first + round(w / unit)):
            cells.add((row, col))
    return payload, cells, side


def _xmp(data: bytes) -> dict[str, str]:
    reader = PdfFileReader(io.BytesIO(data))
    return pdf.read_identifiers(parse_xmp(io.BytesIO(reader.root["/Metadata"].get_object().data)))


def test_page_shows_identifier_data_and_a_qr_code_of_the_licence(licence):
    data = pdfsign.licence_pdf(licence)
    assert data.startswith(b"%PDF-")
    operators, reader = _page_operators(data)
    texts = _actual_texts(operators)
    joined = "\n".join(texts)
    assert licence.identifier in joined and "版本：1" in joined
    for expected in (
        "结婚证",
        "Marriage certificate",
        "张三",
        HOLDER,
        "李四",
        "2026年5月20日",
        "济南市民政局",
        "发证机关",
    ):
        assert expected in texts, expected
    assert "长期有效" in joined
    # The QR code encodes the licence's QR URL: every module drawn is the one segno computes.
    payload, cells, side = _qr_modules(operators)
    credential = services.current_credential(licence)
    assert payload.startswith(qr.qr_url(licence, credential).split("/q/")[0] + "/q/")
    matrix = segno.make_qr(payload, error="m", boost_error=False).matrix
    assert cells == {(r, c) for r in range(side) for c in range(side) if matrix[r][c]}
    # XMP names the licence; the fonts are embedded subsets.
    assert _xmp(data) == {"identifier": licence.identifier, "credential_id": credential.credential_id, "version": "1"}
    fonts = reader.root["/Pages"]["/Kids"][0]["/Resources"]["/Font"]
    for ref in fonts.values():
        descendant = ref.get_object()["/DescendantFonts"][0].get_object()
        assert "+NotoS" in str(descendant["/BaseFont"])
        assert "/FontFile3" in descendant["/FontDescriptor"]
    assert reader.trailer_view["/Info"]["/Author"] == "济南市民政局"


def test_the_seal_is_the_signature_appearance_over_the_issuer(licence):
    data = pdfsign.licence_pdf(licence)
    reader = PdfFileReader(io.BytesIO(data))
    [signature] = reader.embedded_signatures
    assert signature.field_name == pdf.SEAL_FIELD
    widget = signature.sig_field
    appearance = widget["/AP"]["/N"].get_object()
    seal_texts = _actual_texts(_operators(appearance))
    assert "电子证照专用章" in seal_texts
    assert "".join(t for t in seal_texts if len(t) == 1) == "济南市民政局"
    assert int(widget["/F"]) & 4  # printed
    assert signature.docmdp_level == MDPPerm.NO_CHANGES  # a certification signature: no changes allowed


def test_signature_validates_with_pyhanko_against_the_instance_ca(licence, civil):
    data = pdfsign.licence_pdf(licence)
    [signature] = PdfFileReader(io.BytesIO(data)).embedded_signatures
    anchors = [
        asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in pdfsign.ca_certificates()
    ]
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=anchors, allow_fetching=False))
    assert status.bottom_line and status.intact and status.valid and status.trusted
    assert status.signing_cert.subject.native["organization_identifier"] == f"NTRCN-{civil['mz_city'].uscc}"
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    # Against another trust anchor the same signature is not trusted.
    other = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other CA")])
    now = datetime.datetime.now(datetime.UTC)
    foreign = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(other.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(other, hashes.SHA256())
    )
    foreign_anchor = asn1_x509.Certificate.load(foreign.public_bytes(serialization.Encoding.DER))
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=[foreign_anchor], allow_fetching=False))
    assert not status.trusted and not status.bottom_line


def test_verify_pdf_answers_valid_with_its_checks(licence):
    result = pdfsign.verify_pdf(pdfsign.licence_pdf(licence))
    assert result.valid, [c.as_dict() for c in result.checks]
    codes = [check.code for check in result.checks]
    assert codes[:5] == ["input", "signature", "issuer", "key", "identifier"]
    assert {"validity", "revocation", "suspension"} <= set(codes)
    body = result.as_dict()
    assert body["kind"] == "pdf" and body["verdict"] == "valid"
    assert body["licence"]["identifier"] == licence.identifier
    assert body["licence"]["holder_id"] != HOLDER  # masked


def test_certificates_are_made_once_wrapped_and_audited(licence, civil):
    pdfsign.licence_pdf(licence)
    pdfsign.licence_pdf(licence)
    ca = PdfCertificate.objects.get(kind="ca")
    seal = PdfCertificate.objects.get(kind="signer")
    assert seal.ca_id == ca.pk and seal.key.organization == civil["mz_city"] and seal.key.alg == "ES256"
    assert AuditRecord.objects.filter(action="licenses.pdf_ca.create").count() == 1
    assert AuditRecord.objects.filter(action="licenses.pdf_certificate.create").count() == 1
    assert b"BEGIN" not in bytes(ca.wrapped) and len(bytes(ca.wrapped)) > 100
    assert bytes(seal.wrapped) == b""  # the seal's key stays in IssuerKey
    cert = x509.load_pem_x509_certificate(seal.certificate.encode())
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value[0].dotted_string == (
        "1.3.6.1.5.5.7.3.36"
    )
    assert ExtendedKeyUsageOID.CODE_SIGNING not in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    root = x509.load_pem_x509_certificate(ca.certificate.encode())
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(root)


def test_an_altered_byte_is_reported(licence):
    data = bytearray(pdfsign.licence_pdf(licence))
    at = data.index(b"/Title") + 12  # inside the signed document information
    data[at] = data[at] ^ 0x01
    result = pdfsign.verify_pdf(bytes(data))
    assert not result.valid and result.verdict == "invalid"
    assert result.failed[0].code == "signature" and result.failed[0].reason_code == "pdf.altered"
    assert result.summary is None


def test_an_incremental_update_that_changes_the_page_is_reported(licence):
    data = pdfsign.licence_pdf(licence)
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=b"BT /FS 30 Tf 100 100 Td (FORGED) Tj ET"))
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    result = pdfsign.verify_pdf(out.getvalue())
    assert not result.valid
    assert result.failed[0].reason_code == "pdf.modified", [c.as_dict() for c in result.checks]
    assert "增量更新" in result.failed[0].reason


def test_an_incremental_update_of_the_metadata_does_not_move_the_identifier(licence, marriage_type, civil):
    other = services.issue(
        marriage_type,
        issuer=civil["mz_city"],
        holder_name="王五",
        holder_id="11010519491231002X",
        data={"spouse_name": "赵六", "registered_on": "2026-05-21"},
        actor="cli:test",
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdfsign.licence_pdf(licence)))
    meta = writer.root["/Metadata"].get_object()
    forged = meta.data.replace(licence.identifier.encode(), other.identifier.encode())
    writer.root["/Metadata"] = writer.add_object(generic.StreamObject(dict(meta), stream_data=forged))
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    result = pdfsign.verify_pdf(out.getvalue())
    assert not result.valid and result.failed[0].reason_code == "pdf.modified"
    assert "证照标识" in result.failed[0].reason


def test_validation_data_appended_later_is_accepted(licence):
    """A reader may append PAdES validation data (a DSS) after signing: that changes nothing signed."""
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    data = pdfsign.licence_pdf(licence)
    [signature] = PdfFileReader(io.BytesIO(data)).embedded_signatures
    root = asn1_x509.Certificate.load(pdfsign.ca_certificates()[0].public_bytes(serialization.Encoding.DER))
    out = io.BytesIO(data)
    DocumentSecurityStore.add_dss(out, signature.pkcs7_content, certs=[root])
    extended = out.getvalue()
    assert len(extended) > len(data)
    result = pdfsign.verify_pdf(extended)
    assert result.valid, [c.as_dict() for c in result.failed]


def test_a_pdf_sealed_by_another_department_is_refused(licence, civil):
    layout = pdf.resolve_layout(licence.licence_type)
    credential = services.current_credential(licence)
    page = pdf.licence_page(licence, credential, services.licence_data(licence), qr_payload="x", layout=layout)
    forged = pdfsign.sign_pdf(pdf.render(page, layout), civil["mz"])  # the provincial 民政厅, not the issuer
    result = pdfsign.verify_pdf(forged)
    assert not result.valid and result.verdict == "invalid"
    assert result.failed[0].reason_code == "pdf.wrong_issuer"
    assert "山东省民政厅" in result.failed[0].reason


def test_a_pdf_sealed_outside_the_platform_is_untrusted(licence):
    from asn1crypto import keys as asn1_keys
    from pyhanko.sign import fields, signers
    from pyhanko.stamp import NoOpStampStyle
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "济南市民政局")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    asn1_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    signer = signers.SimpleSigner(
        signing_cert=asn1_cert,
        signing_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        ),
        cert_registry=SimpleCertificateStore.from_certs([asn1_cert]),
    )
    layout = pdf.resolve_layout(licence.licence_type)
    page = pdf.licence_page(
        licence, services.current_credential(licence), services.licence_data(licence), qr_payload="x", layout=layout
    )
    pdfsign.licence_ca()  # the instance has a CA, just not this one
    meta = signers.PdfSignatureMetadata(field_name=pdf.SEAL_FIELD, subfilter=fields.SigSeedSubFilter.PADES)

    signed = signers.PdfSigner(meta, signer=signer, stamp_style=NoOpStampStyle()).sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf.render(page, layout)))
    )
    result = pdfsign.verify_pdf(signed.getvalue())
    assert result.verdict == "unknown_issuer"
    assert result.failed[0].code == "issuer" and result.failed[0].reason_code == "pdf.untrusted"


def test_revoked_and_suspended_licences_are_reported(licence):
    data = pdfsign.licence_pdf(licence)
    services.suspend(licence, actor="cli:test", reason="核查中")
    assert pdfsign.verify_pdf(data).verdict == "suspended"
    services.resume(licence, actor="cli:test")
    assert pdfsign.verify_pdf(data).valid
    services.revoke(licence, actor="cli:test", reason="登记错误")
    result = pdfsign.verify_pdf(data)
    assert result.verdict == "revoked" and not result.valid
    assert any(c.code == "revocation" and c.status == "failed" for c in result.checks)
    # A PDF drawn now carries the status as a watermark.
    licence.refresh_from_db()
    operators, _reader = _page_operators(pdfsign.licence_pdf(licence))
    assert "已撤销" in _actual_texts(operators)


def test_an_older_version_is_reported_superseded(licence):
    old = pdfsign.licence_pdf(licence)
    services.vary(licence, {"remark": "补充说明"}, actor="cli:test", reason="更正")
    licence.refresh_from_db()
    assert pdfsign.verify_pdf(old).verdict == "superseded"
    new = pdfsign.verify_pdf(pdfsign.licence_pdf(licence))
    assert new.valid and new.version == 2


def test_key_rotation_keeps_old_pdfs_and_revocation_ends_them(licence, civil):
    old = pdfsign.licence_pdf(licence)
    keys.rotate_key(civil["mz_city"], "ES256", actor="cli:test")
    new = pdfsign.licence_pdf(licence)
    assert PdfCertificate.objects.filter(kind="signer").count() == 2
    assert pdfsign.verify_pdf(old).valid and pdfsign.verify_pdf(new).valid
    retired = IssuerKey.objects.get(organization=civil["mz_city"], alg="ES256", status="retired")
    keys.revoke_key(retired.kid, actor="cli:test")
    result = pdfsign.verify_pdf(old)
    assert not result.valid and result.failed[0].reason_code == "pdf.key_revoked"
    assert pdfsign.verify_pdf(new).valid


@pytest.mark.parametrize(
    ("data", "reason_code"),
    [
        (b"", "pdf.empty"),
        ("not bytes", "pdf.empty"),
        (b"hello world", "pdf.not_pdf"),
        (b"%PDF-1.7\n garbage", "pdf.malformed"),
    ],
)
def test_bad_input_is_reported_never_valid(data, reason_code):
    result = pdfsign.verify_pdf(data)
    assert not result.valid and result.failed[0].reason_code == reason_code


def test_truncated_unsigned_and_oversized_files(licence, settings):
    data = pdfsign.licence_pdf(licence)
    assert not pdfsign.verify_pdf(data[: len(data) // 2]).valid
    layout = pdf.resolve_layout(licence.licence_type)
    page = pdf.licence_page(
        licence, services.current_credential(licence), services.licence_data(licence), qr_payload="x", layout=layout
    )
    unsigned = pdfsign.verify_pdf(pdf.render(page, layout))
    assert unsigned.failed[0].reason_code == "pdf.unsigned"
    settings.LICENCE_PDF_MAX_BYTES = 1024
    assert pdfsign.verify_pdf(data).failed[0].reason_code == "pdf.too_large"


def test_an_unknown_licence_identifier_is_reported(licence):
    data = pdfsign.licence_pdf(licence)
    type(licence).objects.filter(pk=licence.pk).update(identifier="gone")  # as if it was never issued here
    result = pdfsign.verify_pdf(data)
    assert not result.valid and result.failed[0].reason_code == "pdf.unknown_licence"


# --- layout ---------------------------------------------------------------------------------------------


def test_layout_defaults_and_overrides(marriage_type):
    default = pdf.resolve_layout(marriage_type)
    assert default.size == "A4" and default.title == "结婚证" and default.subtitle == "Marriage certificate"
    assert [name for name, _label in default.items] == ["spouse_name", "registered_on", "remark"]
    assert default.holder_label == "持证人" and default.holder_id_label == "公民身份号码"
    marriage_type.layout = {
        "size": "A5",
        "orientation": "landscape",
        "items": [{"name": "registered_on", "label": "结婚登记日期"}, "spouse_name", "nope"],
        "font_size": "bad",
        "seal_mm": 45,
    }
    custom = pdf.resolve_layout(marriage_type)
    assert custom.items == (("registered_on", "结婚登记日期"), ("spouse_name", "配偶姓名"))
    assert custom.page_size[0] > custom.page_size[1]  # landscape
    assert custom.font_size == 13.0 and custom.seal_mm == 45
    problems = pdf.layout_problems(marriage_type.layout, marriage_type.items)
    assert len(problems) == 2 and any("nope" in p for p in problems)
    assert pdf.layout_problems({}, marriage_type.items) == []
    assert pdf.layout_problems(["x"], marriage_type.items) == ["版式应为 JSON 对象"]


def test_a5_landscape_with_long_text_still_fits_one_page(licence, marriage_type):
    marriage_type.layout = {"size": "A5", "orientation": "landscape", "note": "本证照可扫描二维码核验"}
    marriage_type.save()
    services.vary(licence, {"remark": "很长的备注。" * 200 + "A" * 700}, actor="cli:test", reason="test")
    licence.refresh_from_db()
    data = pdfsign.licence_pdf(licence)
    operators, reader = _page_operators(data)
    assert len(reader.root["/Pages"]["/Kids"]) == 1
    box = [float(v) for v in reader.root["/Pages"]["/Kids"][0]["/MediaBox"]]
    assert round(box[2]) == 595 and round(box[3]) == 420
    texts = _actual_texts(operators)
    assert any(t.endswith("……") for t in texts) and "本证照可扫描二维码核验" in texts
    assert "有效期限" in texts and "李四" in texts  # the long value was shortened, no row dropped
    assert pdfsign.verify_pdf(data).valid
