"""The licence verification API (证照核验接口) at ``POST /api/v1/licences/verify/`` — public, rate-limited.

Body: ``{"credential": "<compact VC-JOSE, QR payload or QR URL>", "mode": "online" | "offline"}``;
``POST /api/v1/licences/verify/pdf`` takes a licence PDF as the body (``application/pdf``).
``online`` (the default) checks status in the issuer's register; ``offline`` answers what a
verifier holding this platform's published JWK Sets and status lists would conclude.

The answer is 200 with the verdict (``valid``, ``invalid``, ``revoked``, ``suspended``, ``expired``,
``not_yet_valid``, ``unknown_issuer``, ``superseded``, ``status_unknown`` or ``error``), every check
with a stable ``reason_code`` and a reason in the request's language, and — once the signature has
verified — the licence summary with the holder masked. A body that is not JSON, lacks the field
or exceeds the size limit is a 422 problem; too many requests from one address a 429 problem with
``Retry-After``. Verification never answers ``valid`` on an error, and an error is never a 500.
"""

from __future__ import annotations

import logging
from typing import Literal

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext
from ninja import Field, Router, Schema

from dgov.api.problems import Problem, problem_response
from dgov.licenses import ratelimit, verification

logger = logging.getLogger("dgov.licenses.verification")

router = Router(tags=["licences"])


class VerifyIn(Schema):
    """What to verify."""

    credential: str = Field(
        min_length=1,
        max_length=verification.MAX_CREDENTIAL_LENGTH,
        description="电子证照凭证（VC-JOSE 紧凑序列化）、二维码载荷或二维码网址",
    )
    mode: Literal["online", "offline"] = Field(
        "online", description="online：按签发机构实时状态；offline：按已发布的状态列表（离线核验方的结论）"
    )


class CheckOut(Schema):
    """One check: which, how it came out, why."""

    code: str = Field(
        description="input algorithm issuer key signature identifier validity revocation suspension record"
    )
    label: str
    status: Literal["passed", "failed", "warning", "skipped"]
    reason_code: str = Field(description="稳定的原因代码，如 signature.invalid、status.revoked")
    reason: str


class LicenceOut(Schema):
    """The verified licence, the holder masked (present only once the signature verified)."""

    identifier: str
    version: int | None
    type_code: str
    type_name: str
    number: str
    issuer_name: str
    issuer_uscc: str
    holder_kind: str
    holder_name: str = Field(description="自然人姓名已脱敏")
    holder_id: str = Field(description="公民身份号码已脱敏；统一社会信用代码原样")
    valid_from: str
    valid_until: str | None = Field(description="长期有效为空")
    issued: str
    recognized_by: str = Field("", description="互认来源：提供该签发机构的级联对端平台（本平台签发机构为空）")


class VerifyOut(Schema):
    """The verdict with every check."""

    verdict: Literal[
        "valid",
        "invalid",
        "unknown_issuer",
        "superseded",
        "revoked",
        "expired",
        "suspended",
        "not_yet_valid",
        "status_unknown",
        "error",
    ]
    verdict_label: str
    valid: bool
    kind: str = Field(description="credential、qr、pdf，无法识别时为空")
    mode: Literal["online", "offline"]
    checked_at: str
    checks: list[CheckOut]
    licence: LicenceOut | None


def _error_result(mode: str) -> verification.VerificationResult:
    """The answer when verification itself failed unexpectedly: an error, never valid."""
    check = verification.Check(
        "internal", verification.CheckStatus.FAILED, "internal.error", gettext("核验过程中出错，无法给出结论")
    )
    return verification.VerificationResult(
        verdict=verification.Verdict.ERROR, checks=[check], kind="", mode=mode, checked_at=timezone.now()
    )


def _answer(result: verification.VerificationResult, channel: str) -> JsonResponse:
    """Log the verification and answer it (built from the result directly: VerifyOut documents it)."""
    verification.log_verification(result, channel=channel)
    return JsonResponse(result.as_dict(), json_dumps_params={"ensure_ascii": False})


def _throttled(request: HttpRequest):
    """A 429 problem when this client address has used up its verifications, else None."""
    wait = ratelimit.retry_after(request)
    if not wait:
        return None
    return problem_response(
        request, 429, detail=gettext("核验请求过于频繁，请稍后再试。"), headers={"Retry-After": str(wait)}
    )


@router.post(
    "",
    response={200: VerifyOut, 422: Problem, 429: Problem},
    summary="核验电子证照（凭证或二维码）",
    auth=None,
)
def verify(request: HttpRequest, body: VerifyIn):
    """Verify a licence credential or QR payload: the verdict, each check with its reason, the masked licence."""
    refused = _throttled(request)
    if refused is not None:
        return refused
    try:
        result = verification.verify(body.credential, online=body.mode == "online")
    except Exception:  # noqa: BLE001 - verify() already turns errors into checks; this is the last guard
        logger.exception("licence verification API failed")
        result = _error_result(body.mode)
    return _answer(result, "api")


@router.post(
    "pdf",
    response={200: VerifyOut, 413: Problem, 415: Problem, 429: Problem},
    summary="核验电子证照 PDF（版式文件）",
    auth=None,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def verify_pdf(request: HttpRequest):
    """Verify a licence PDF sent as the body (``Content-Type: application/pdf``): seal, signer, identifier, status."""
    refused = _throttled(request)
    if refused is not None:
        return refused
    if request.content_type != "application/pdf":
        return problem_response(request, 415, detail=gettext("请以 application/pdf 提交 PDF 文件。"))
    data = request.body  # beyond DATA_UPLOAD_MAX_MEMORY_SIZE: 413 (dgov.api.problems)
    try:
        from dgov.licenses import pdfsign

        result = pdfsign.verify_pdf(data)
    except Exception:  # noqa: BLE001 - verify_pdf() already turns errors into checks; this is the last guard
        logger.exception("licence PDF verification API failed")
        result = _error_result("online")
    return _answer(result, "api-pdf")
