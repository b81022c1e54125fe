"""E-licence operations (电子证照): issue, vary, renew, suspend, resume and revoke, with history and audit.

Every operation that changes what a licence says (issue, vary, renew) signs a new
:class:`~dgov.licenses.models.Credential` for the new version and marks the previous one
superseded (its revocation bit is set, so an old copy no longer verifies as current). Suspension and
revocation flip the current credential's bits; the published status lists follow in batches
(:func:`dgov.licenses.credentials.publish_due`).

Who may issue: the CLI and other system actors; officials and API clients of a department that
is the type's competent department or of the type's issuing kind (any level). Every state change
is audited (``licenses.licence.*``) inside the transaction that makes it.
"""

from __future__ import annotations

import calendar
import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Length
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.kernel.fields import blind_index
from dgov.kernel.models import Organization
from dgov.kernel.services import audit
from dgov.kernel.validators import validate_resident_id, validate_uscc
from dgov.licenses import credentials, index, keys, statuslist
from dgov.licenses.models import Credential, HolderKind, Licence, LicenceEvent, LicenceType, StatusList
from dgov.registry.services import department_of

ITEM_TYPES = ("string", "text", "date", "integer", "decimal", "enum", "boolean")


class LicenceError(ValidationError):
    """A licence operation was refused because its input is not acceptable (a 4xx, never a 500)."""


# --- permissions --------------------------------------------------------------------------------


def _is_system(actor) -> bool:
    """The CLI or another system actor (a ``kind:label`` string) or no actor at all."""
    return actor is None or isinstance(actor, str)


def may_issue(actor, licence_type: LicenceType, issuer: Organization) -> bool:
    """Whether ``actor`` may issue (and change) licences of ``licence_type`` in the name of ``issuer``."""
    if not (issuer.is_active and _issuer_fits(licence_type, issuer)):
        return False
    if _is_system(actor):
        return True
    department = department_of(actor)
    return department is not None and department.pk == issuer.pk


def _issuer_fits(licence_type: LicenceType, issuer: Organization) -> bool:
    """Whether ``issuer`` is the type's competent department or of its issuing kind."""
    if issuer.pk == licence_type.department_id:
        return True
    return bool(licence_type.issuer_kind) and issuer.kind == licence_type.issuer_kind


def _refuse(action: str, *, actor, target, message: str) -> PermissionDenied:
    """Audit a refused operation (in its own transaction) and return the exception to raise."""
    with transaction.atomic():
        audit.record(action, actor=actor, target=target, outcome="denied", detail={"reason": message})
    return PermissionDenied(message)


# --- validation -----------------------------------------------------------------------------------


def clean_holder(kind: str, holder_id: str) -> str:
    """The holder's identifier normalized and checked: a resident ID number for persons, a USCC otherwise."""
    value = (holder_id or "").strip().upper()
    try:
        return validate_resident_id(value) if kind == HolderKind.PERSON else validate_uscc(value)
    except ValidationError as exc:
        raise LicenceError({"holder_id": exc.messages}) from None


def clean_data(licence_type: LicenceType, data: Mapping[str, Any]) -> dict[str, Any]:
    """The licence data checked against the type's items: required, known, of the declared type.

    Raises :class:`LicenceError` listing every problem ({item: message}).
    """
    if not isinstance(data, Mapping):
        raise LicenceError({"data": _("证照数据应为对象")})
    items = {item["name"]: item for item in licence_type.items}
    errors: dict[str, str] = {}
    for name in data:
        if name not in items:
            errors[str(name)] = _("证照类型中没有此数据项")
    cleaned: dict[str, Any] = {}
    for name, item in items.items():
        value = data.get(name)
        if value in (None, ""):
            if item.get("required"):
                errors[name] = _("必填")
            continue
        try:
            cleaned[name] = _clean_value(item, value)
        except (TypeError, ValueError) as exc:
            errors[name] = str(exc) or _("格式不正确")
    if errors:
        raise LicenceError(errors)
    return cleaned


def _clean_value(item: Mapping[str, Any], value: Any) -> Any:
    """One item's value in its canonical JSON form; raises ValueError with a message."""
    kind = item.get("type", "string")
    if kind in ("string", "text"):
        text = str(value).strip()
        limit = int(item.get("max_length") or (2000 if kind == "text" else 200))
        if len(text) > limit:
            raise ValueError(_("超过 %(n)s 个字符") % {"n": limit})
        return text
    if kind == "date":
        if isinstance(value, datetime.date):
            return value.isoformat()
        try:
            return datetime.date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise ValueError(_("日期格式应为 YYYY-MM-DD")) from None
    if kind == "integer":
        if isinstance(value, bool):
            raise ValueError(_("应为整数"))
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(_("应为整数")) from None
    if kind == "decimal":
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(_("应为数值")) from None
        if not number.is_finite():
            raise ValueError(_("应为数值"))
        return str(number)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "是", "yes"):
            return True
        if text in ("false", "0", "否", "no"):
            return False
        raise ValueError(_("应为是或否"))
    if kind == "enum":
        choices = item.get("choices", [])
        allowed = [str(choice["value"] if isinstance(choice, Mapping) else choice) for choice in choices]
        if str(value) not in allowed:
            raise ValueError(_("取值应为：%(values)s") % {"values": "、".join(allowed)})
        return str(value)
    raise ValueError(_("未知的数据项类型 %(kind)s") % {"kind": kind})


def default_valid_until(licence_type: LicenceType, valid_from: datetime.date) -> datetime.date | None:
    """The end of validity the type's rule gives (``{"years": n}`` / ``{"months": n}``), None for long-term."""
    rule = licence_type.validity or {}
    months = int(rule.get("years", 0)) * 12 + int(rule.get("months", 0))
    if months <= 0:
        return None
    year, month = divmod(valid_from.month - 1 + months, 12)
    target_year, target_month = valid_from.year + year, month + 1
    day = min(valid_from.day, calendar.monthrange(target_year, target_month)[1])
    return datetime.date(target_year, target_month, day) - datetime.timedelta(days=1)


# --- issuance -------------------------------------------------------------------------------------


@dataclass
class _Slots:
    """The status-list entries of one credential: (list, index) for revocation and suspension."""

    revocation: tuple[StatusList, int]
    suspension: tuple[StatusList, int]


def _allocate(issuer: Organization, count: int) -> list[_Slots]:
    """Status entries for ``count`` new credentials of ``issuer`` (inside the caller's transaction)."""
    revocations = statuslist.allocate(issuer, StatusList.Purpose.REVOCATION, count)
    suspensions = statuslist.allocate(issuer, StatusList.Purpose.SUSPENSION, count)
    return [_Slots(r, s) for r, s in zip(revocations, suspensions, strict=True)]


def _sign(
    licence: Licence,
    data: Mapping[str, Any],
    slots: _Slots,
    *,
    alg: str | None,
    now,
    signing_key: tuple[Any, int] | None = None,
) -> Credential:
    """Build and sign the credential of the licence's current version (not saved). ``signing_key``: (key, row id)."""
    key, key_id = signing_key or keys.active_key(licence.issuer, alg or credentials.default_alg())
    vc = credentials.build_vc(
        identifier=licence.identifier,
        version=licence.version,
        issuer=licence.issuer,
        type_code=licence.licence_type.code,
        type_name=licence.licence_type.name,
        number=licence.number,
        holder_kind=licence.holder_kind,
        holder_name=licence.holder_name,
        holder_id=licence.holder_id,
        data=data,
        issued_at=now,
        valid_from=licence.valid_from,
        valid_until=licence.valid_until,
        revocation=(slots.revocation[0].pk, slots.revocation[1]),
        suspension=(slots.suspension[0].pk, slots.suspension[1]),
    )
    return Credential(
        licence=licence,
        version=licence.version,
        credential_id=vc["id"],
        key_id=key_id,
        jws=credentials.sign_vc(vc, key),
        revocation_list=slots.revocation[0],
        revocation_index=slots.revocation[1],
        suspension_list=slots.suspension[0],
        suspension_index=slots.suspension[1],
        issued_at=now,
    )


def _serial_prefix(issuer: Organization, year: int) -> str:
    """The start of generated serials and numbers: the issuer's division code and the year."""
    return f"{issuer.division.code[:6]}{year}"


def _next_serials(licence_type: LicenceType, issuer: Organization, year: int, count: int, *, skip=()) -> list[str]:
    """``count`` generated serials (issuer division, year, 7-digit sequence within issuer, type and year).

    The sequence continues from the highest generated serial among the stored identifiers (so
    licences whose own number could not serve as a serial are counted too); ``skip``: serials
    chosen by rows of the same batch. Called after the issuer's status list is locked, so
    concurrent issuers of one department do not draw the same serials.
    """
    prefix = _serial_prefix(issuer, year)
    start = ".".join((credentials.OID_ARC, licence_type.code, issuer.uscc, prefix))
    length = len(credentials.make_identifier(licence_type.code, issuer.uscc, f"{prefix}{0:07d}"))
    last = (
        Licence.objects.annotate(identifier_length=Length("identifier"))
        .filter(identifier__startswith=start, identifier_length=length)
        .order_by("-identifier")
        .values_list("identifier", flat=True)
        .first()
    )
    sequence = 0
    if last:
        tail = last.split(".")[-2][len(prefix) :]
        sequence = int(tail) if tail.isdigit() else 0
    serials: list[str] = []
    skip = set(skip)
    while len(serials) < count:
        sequence += 1
        serial = f"{prefix}{sequence:07d}"
        if serial not in skip:
            serials.append(serial)
    return serials


def _actor_label(actor) -> str:
    """A short label of the actor for history rows."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor[:150]
    return str(getattr(actor, "username", None) or getattr(actor, "client_id", None) or actor)[:150]


HOLDER_COLUMNS = ("holder_name", "holder_id", "number", "valid_from", "valid_until")
ROW_KEYS = frozenset({*HOLDER_COLUMNS, "data"})
BULK_CHUNK = 500
MAX_BULK_ROWS = 100_000


@dataclass
class _Row:
    """One licence to issue, checked: holder, data, number (empty: generated) and validity."""

    line: int
    holder_name: str
    holder_id: str
    data: dict[str, Any]
    chosen: str
    valid_from: datetime.date
    valid_until: datetime.date | None


def _date(value: Any) -> datetime.date | None:
    """A date from a date or an ISO ``YYYY-MM-DD`` text; None when empty; ValueError when malformed."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value).strip())


def _prepare(licence_type: LicenceType, raw: Mapping[str, Any], *, line: int, today) -> tuple[_Row | None, dict]:
    """Check one licence's input against its type; (row, {field: [messages]}) — every problem at once."""
    errors: dict[str, list[str]] = {}
    if not isinstance(raw, Mapping):
        return None, {"row": [_("应为对象")]}
    for key in sorted(set(raw) - ROW_KEYS):
        errors.setdefault(str(key), []).append(_("未知的列"))
    holder_name = str(raw.get("holder_name") or "").strip()
    if not holder_name:
        errors.setdefault("holder_name", []).append(_("必填"))
    elif len(holder_name) > 200:
        errors.setdefault("holder_name", []).append(_("超过 %(n)s 个字符") % {"n": 200})
    holder_id = ""
    try:
        holder_id = clean_holder(licence_type.holder_kind, str(raw.get("holder_id") or ""))
    except LicenceError as exc:
        errors.setdefault("holder_id", []).extend(exc.message_dict["holder_id"])
    data: dict[str, Any] = {}
    try:
        data = clean_data(licence_type, raw.get("data") if raw.get("data") is not None else {})
    except LicenceError as exc:
        for key, messages in exc.message_dict.items():
            errors.setdefault(key, []).extend(messages)
    chosen = str(raw.get("number") or "").strip()
    if len(chosen) > 64:
        errors.setdefault("number", []).append(_("超过 %(n)s 个字符") % {"n": 64})
    dates: dict[str, datetime.date | None] = {}
    for key in ("valid_from", "valid_until"):
        try:
            dates[key] = _date(raw.get(key))
        except (TypeError, ValueError):
            errors.setdefault(key, []).append(_("日期格式应为 YYYY-MM-DD"))
            dates[key] = None
    valid_from = dates["valid_from"] or today
    valid_until = dates["valid_until"]
    if valid_until is None and "valid_until" not in errors:
        valid_until = default_valid_until(licence_type, valid_from)
    if valid_until is not None and valid_until < valid_from:
        errors.setdefault("valid_until", []).append(_("有效期截止不能早于起始"))
    if errors:
        return None, errors
    row = _Row(line, holder_name, holder_id, data, chosen, valid_from, valid_until)
    return row, {}


def check_issuer(licence_type: LicenceType, issuer: Organization, actor, *, action: str) -> None:
    """Refuse retired types and issuers (or actors) that may not issue the type; refusals are audited."""
    if licence_type.status != LicenceType.Status.ACTIVE:
        raise LicenceError({"licence_type": _("证照类型已停用")})
    if not may_issue(actor, licence_type, issuer):
        raise _refuse(
            action,
            actor=actor,
            target=licence_type,
            message=_("无权以 %(issuer)s 名义签发 %(type)s") % {"issuer": issuer.name, "type": licence_type.name},
        )


def _taken(licence_type: LicenceType, issuer: Organization, numbers: list[str], identifiers: list[str]):
    """(numbers, identifiers) among the given that are stored already (one query per 900 values)."""
    numbers_taken: set[str] = set()
    identifiers_taken: set[str] = set()
    for start in range(0, len(numbers), 900):
        numbers_taken.update(
            Licence.objects.filter(
                issuer=issuer, licence_type=licence_type, number__in=numbers[start : start + 900]
            ).values_list("number", flat=True)
        )
    for start in range(0, len(identifiers), 900):
        identifiers_taken.update(
            Licence.objects.filter(identifier__in=identifiers[start : start + 900]).values_list("identifier", flat=True)
        )
    return numbers_taken, identifiers_taken


def _write(
    licence_type: LicenceType,
    issuer: Organization,
    rows: list[_Row],
    *,
    actor,
    source: str,
    alg: str | None,
    progress=None,
) -> tuple[list[Licence], dict[int, dict[str, list[str]]]]:
    """Issue checked rows in the caller's transaction; (licences, {}) or ([], {line: errors}) when numbers are taken.

    Status entries are allocated for all rows at once (which locks the issuer's lists until the
    transaction ends), serials drawn, then licences, credentials and events are inserted in chunks
    of :data:`BULK_CHUNK` with one audit record per chunk (per licence for a single issue) and
    the index records written to the e-licence base library per chunk.
    """
    now = timezone.now()
    label = _actor_label(actor)
    signing_key = keys.active_key(issuer, alg or credentials.default_alg())
    slots = _allocate(issuer, len(rows))
    # Numbers: unique within the batch and not yet used by the issuer for this type.
    errors: dict[int, dict[str, list[str]]] = {}
    seen: dict[str, int] = {}
    chosen_serials: dict[int, str] = {}
    for row in rows:
        if not row.chosen:
            continue
        if row.chosen in seen:
            errors.setdefault(row.line, {}).setdefault("number", []).append(
                _("与第 %(row)s 行的证照编号重复") % {"row": seen[row.chosen]}
            )
            continue
        seen[row.chosen] = row.line
        serial = credentials.plain_serial(row.chosen)
        if serial is not None:
            chosen_serials[row.line] = serial
    generated = iter(
        _next_serials(
            licence_type,
            issuer,
            timezone.localtime(now).year,
            len(rows) - len(chosen_serials),
            skip=chosen_serials.values(),
        )
    )
    planned: list[tuple[_Row, str, str]] = []  # (row, number, identifier)
    by_serial: dict[str, int] = {}
    for row in rows:
        serial = chosen_serials.get(row.line) or next(generated)
        identifier = credentials.make_identifier(licence_type.code, issuer.uscc, serial)
        if serial in by_serial:
            errors.setdefault(row.line, {}).setdefault("number", []).append(
                _("与第 %(row)s 行的证照编号对应同一证照标识") % {"row": by_serial[serial]}
            )
        by_serial.setdefault(serial, row.line)
        planned.append((row, row.chosen or serial, identifier))
    numbers_taken, identifiers_taken = _taken(
        licence_type, issuer, [row.chosen for row in rows if row.chosen], [identifier for _r, _n, identifier in planned]
    )
    for row, _number, identifier in planned:
        if (row.chosen and row.chosen in numbers_taken) or identifier in identifiers_taken:
            errors.setdefault(row.line, {}).setdefault("number", []).append(_("该签发机构已签发过此编号的同类证照"))
    if errors:
        return [], errors
    issued: list[Licence] = []
    single = len(planned) == 1
    for start in range(0, len(planned), BULK_CHUNK):
        chunk = planned[start : start + BULK_CHUNK]
        licences = [
            Licence(
                identifier=identifier,
                licence_type=licence_type,
                type_version=licence_type.version,
                issuer=issuer,
                number=number,
                holder_kind=licence_type.holder_kind,
                holder_name=row.holder_name,
                holder_id=row.holder_id,
                holder_index=holder_index(licence_type.holder_kind, row.holder_id),
                data=json.dumps(row.data, ensure_ascii=False, sort_keys=True),
                division_code=issuer.division.code,
                issued_at=now,
                valid_from=row.valid_from,
                valid_until=row.valid_until,
                source=source[:64],
                issued_by=label,
            )
            for row, number, identifier in chunk
        ]
        try:
            with transaction.atomic():
                Licence.objects.bulk_create(licences)
        except IntegrityError:  # a concurrent writer took a number between the check and the insert
            return [], {row.line: {"number": [_("该签发机构已签发过此编号的同类证照")]} for row, _n, _i in chunk}
        Credential.objects.bulk_create(
            [
                _sign(licence, row.data, slot, alg=alg, now=now, signing_key=signing_key)
                for licence, (row, _n, _i), slot in zip(licences, chunk, slots[start : start + BULK_CHUNK], strict=True)
            ]
        )
        LicenceEvent.objects.bulk_create(
            [
                LicenceEvent(licence=licence, at=now, actor=label, action=LicenceEvent.Action.ISSUE, version=1)
                for licence in licences
            ]
        )
        if single:
            licence = licences[0]
            audit.record(
                "licenses.licence.issue",
                actor=actor,
                target=licence,
                detail={
                    "identifier": licence.identifier,
                    "type": licence_type.code,
                    "issuer": issuer.code,
                    "source": source,
                },
            )
        else:
            audit.record(
                "licenses.licence.issue_many",
                actor=actor,
                target=licence_type,
                detail={
                    "type": licence_type.code,
                    "issuer": issuer.code,
                    "source": source,
                    "count": len(licences),
                    "identifiers": [licence.identifier for licence in licences],
                },
            )
        index.record_issued(licences)
        issued.extend(licences)
        if progress is not None:
            progress(len(licences))
    return issued, {}


def issue(
    licence_type: LicenceType,
    *,
    issuer: Organization,
    holder_name: str,
    holder_id: str,
    data: Mapping[str, Any],
    actor,
    number: str | None = None,
    valid_from: datetime.date | None = None,
    valid_until: datetime.date | None = None,
    source: str = "",
    alg: str | None = None,
) -> Licence:
    """Issue one licence: checks, identifier, signed credential, history, audit and index record; returns it."""
    check_issuer(licence_type, issuer, actor, action="licenses.licence.issue")
    raw = {
        "holder_name": holder_name,
        "holder_id": holder_id,
        "data": data,
        "number": number,
        "valid_from": valid_from,
        "valid_until": valid_until,
    }
    row, errors = _prepare(licence_type, raw, line=1, today=timezone.localdate())
    if errors:
        raise LicenceError(errors)
    with transaction.atomic():
        issued, errors = _write(licence_type, issuer, [row], actor=actor, source=source, alg=alg)
        if errors:
            raise LicenceError(errors[1])
    return issued[0]


class BulkIssueError(LicenceError):
    """Bulk issuance refused because rows are bad; ``problems`` lists (row, column, reason) for every one."""

    def __init__(self, problems: list[tuple[int, str, str]]):
        self.problems = problems
        super().__init__({f"row {row}: {column}": [reason] for row, column, reason in problems} or {"rows": ["—"]})


def _prepare_rows(licence_type: LicenceType, rows) -> tuple[list[_Row], list[tuple[int, str, str]]]:
    """Check every row (dicts, or (line, dict) pairs): (good rows, problems as (line, column, reason))."""
    today = timezone.localdate()
    prepared: list[_Row] = []
    problems: list[tuple[int, str, str]] = []
    for position, entry in enumerate(rows, start=1):
        if position > MAX_BULK_ROWS:
            problems.append((position, "", _("一次最多签发 %(n)d 本证照") % {"n": MAX_BULK_ROWS}))
            break
        line, raw = entry if isinstance(entry, tuple) and len(entry) == 2 else (position, entry)
        row, errors = _prepare(licence_type, raw, line=line, today=today)
        for column, messages in errors.items():
            problems.extend((line, column, message) for message in messages)
        if row is not None:
            prepared.append(row)
    return prepared, problems


def check_rows(licence_type: LicenceType, rows) -> list[tuple[int, str, str]]:
    """The problems of bulk rows against the type, as (line, column, reason), without issuing anything.

    Checks the data only (holder, items, dates); numbers already used are found by :func:`issue_many`.
    """
    return _prepare_rows(licence_type, rows)[1]


def issue_many(
    licence_type: LicenceType,
    rows,
    *,
    issuer: Organization,
    actor,
    source: str,
    alg: str | None = None,
    progress=None,
) -> list[Licence]:
    """Issue many licences of one type at once, all or nothing (bulk issuance: CSV, API, demo, benchmark).

    ``rows`` holds dicts ``{holder_name, holder_id, data: {item: value}, number?, valid_from?,
    valid_until?}``, or ``(row number, dict)`` pairs when the caller numbers rows itself (CSV line
    numbers). Every row is checked first; when any is bad :class:`BulkIssueError` lists each
    problem as (row, column, reason) and nothing is issued. Then, in one transaction, the status
    entries are allocated in one go, the credentials signed with one key lookup, and licences,
    credentials and events bulk-inserted in chunks, with one audit record per chunk listing its
    identifiers and the index records written to the base library per chunk. ``progress(n)`` is
    called after each chunk.
    """
    check_issuer(licence_type, issuer, actor, action="licenses.licence.issue_many")
    prepared, problems = _prepare_rows(licence_type, rows)
    if not problems and not prepared:
        problems.append((0, "", _("没有要签发的证照")))
    if problems:
        raise BulkIssueError(problems)
    with transaction.atomic():
        issued, errors = _write(licence_type, issuer, prepared, actor=actor, source=source, alg=alg, progress=progress)
        if errors:
            raise BulkIssueError(
                [
                    (number, column, message)
                    for number, columns in sorted(errors.items())
                    for column, messages in columns.items()
                    for message in messages
                ]
            )
    return issued


def licence_data(licence: Licence) -> dict[str, Any]:
    """The licence's data items (decrypted)."""
    return json.loads(licence.data or "{}")


def current_credential(licence: Licence) -> Credential:
    """The credential of the licence's current version."""
    return licence.credentials.get(version=licence.version)


def _locked(licence: Licence) -> Licence:
    """The licence row locked for update, with its type and issuer."""
    return (
        Licence.objects.select_for_update(of=("self",))
        .select_related("licence_type", "issuer", "issuer__division")
        .get(pk=licence.pk)
    )


def check_change(action: str, licence: Licence, actor) -> None:
    """Refuse changes by anyone who may not issue the licence's type for its issuer."""
    if not may_issue(actor, licence.licence_type, licence.issuer):
        raise _refuse(f"licenses.licence.{action}", actor=actor, target=licence, message=_("无权变更该证照"))


def _new_version(
    licence: Licence, *, action: str, actor, reason: str, data: dict[str, Any], previous: dict[str, Any], alg
) -> Licence:
    """Supersede the current credential and sign a new version (inside the caller's transaction)."""
    now = timezone.now()
    old = current_credential(licence)
    statuslist.set_status(old.revocation_list, old.revocation_index, True)
    old.superseded_at = now
    old.save(update_fields=["superseded_at"])
    licence.version += 1
    licence.data = json.dumps(data, ensure_ascii=False, sort_keys=True)
    licence.save()
    [slots] = _allocate(licence.issuer, 1)
    credential = _sign(licence, data, slots, alg=alg, now=now)
    credential.save()
    if licence.status == Licence.Status.SUSPENDED:
        statuslist.set_status(credential.suspension_list, credential.suspension_index, True)
    changed = sorted(name for name in set(data) | set(previous) if data.get(name) != previous.get(name))
    LicenceEvent.objects.create(
        licence=licence,
        at=now,
        actor=_actor_label(actor),
        action=action,
        version=licence.version,
        reason=reason[:300],
        changed=changed,
        previous=json.dumps(previous, ensure_ascii=False, sort_keys=True),
    )
    audit.record(
        f"licenses.licence.{action}",
        actor=actor,
        target=licence,
        detail={"identifier": licence.identifier, "version": licence.version, "changed": changed, "reason": reason},
    )
    index.record_changed(licence)
    return licence


def vary(licence: Licence, changes: Mapping[str, Any], *, actor, reason: str, alg: str | None = None) -> Licence:
    """Change data items of a valid or suspended licence (变更): a new version with a new credential."""
    with transaction.atomic():
        licence = _locked(licence)
        check_change("vary", licence, actor)
        if licence.status == Licence.Status.REVOKED:
            raise LicenceError({"status": _("已撤销的证照不能变更")})
        previous = licence_data(licence)
        data = clean_data(licence.licence_type, {**previous, **changes})
        if data == previous:
            raise LicenceError({"data": _("没有变更任何数据项")})
        return _new_version(licence, action="vary", actor=actor, reason=reason, data=data, previous=previous, alg=alg)


def renew(licence: Licence, *, actor, valid_until: datetime.date | None = None, reason: str = "", alg=None) -> Licence:
    """Extend a licence's validity (延续): a new version valid until ``valid_until`` (default: the type's rule)."""
    with transaction.atomic():
        licence = _locked(licence)
        check_change("renew", licence, actor)
        if licence.status == Licence.Status.REVOKED:
            raise LicenceError({"status": _("已撤销的证照不能延续")})
        start = max(timezone.localdate(), (licence.valid_until or timezone.localdate()) + datetime.timedelta(days=1))
        new_until = valid_until or default_valid_until(licence.licence_type, start)
        if licence.valid_until is None or (new_until is not None and new_until <= licence.valid_until):
            raise LicenceError({"valid_until": _("延续后的有效期应晚于当前有效期")})
        data = licence_data(licence)
        licence.valid_until = new_until
        return _new_version(licence, action="renew", actor=actor, reason=reason, data=data, previous=data, alg=alg)


def _set_status(licence: Licence, *, action: str, status: str, actor, reason: str) -> Licence:
    """Suspend, resume or revoke: flip the current credential's bit, record history and audit."""
    if not (reason or "").strip() and action != "resume":
        raise LicenceError({"reason": _("请填写原因")})
    with transaction.atomic():
        licence = _locked(licence)
        check_change(action, licence, actor)
        allowed = {
            "suspend": (Licence.Status.VALID,),
            "resume": (Licence.Status.SUSPENDED,),
            "revoke": (Licence.Status.VALID, Licence.Status.SUSPENDED),
        }[action]
        if licence.status not in allowed:
            message = _("证照当前状态为%(status)s，不能执行此操作") % {"status": licence.get_status_display()}
            raise LicenceError({"status": message})
        credential = current_credential(licence)
        if action == "revoke":
            statuslist.set_status(credential.revocation_list, credential.revocation_index, True)
        else:
            statuslist.set_status(credential.suspension_list, credential.suspension_index, action == "suspend")
        licence.status = status
        licence.status_reason = (reason or "").strip()[:300]
        licence.save(update_fields=["status", "status_reason", "updated_at"])
        LicenceEvent.objects.create(
            licence=licence,
            at=timezone.now(),
            actor=_actor_label(actor),
            action=action,
            version=licence.version,
            reason=licence.status_reason,
        )
        audit.record(
            f"licenses.licence.{action}",
            actor=actor,
            target=licence,
            detail={"identifier": licence.identifier, "reason": licence.status_reason},
        )
        index.record_changed(licence)
    return licence


def suspend(licence: Licence, *, actor, reason: str) -> Licence:
    """Suspend a valid licence (暂停): its credential's suspension bit is set."""
    return _set_status(licence, action="suspend", status=Licence.Status.SUSPENDED, actor=actor, reason=reason)


def resume(licence: Licence, *, actor, reason: str = "") -> Licence:
    """Lift a suspension (恢复)."""
    return _set_status(licence, action="resume", status=Licence.Status.VALID, actor=actor, reason=reason)


def revoke(licence: Licence, *, actor, reason: str) -> Licence:
    """Revoke a licence for good (撤销/注销): its current credential's revocation bit is set."""
    return _set_status(licence, action="revoke", status=Licence.Status.REVOKED, actor=actor, reason=reason)


def holder_index(kind: str, holder_id: str) -> str:
    """The blind index of a holder's identifier, the same the registries use (``resident_id`` / ``uscc``)."""
    return blind_index(holder_id, purpose="resident_id" if kind == HolderKind.PERSON else "uscc")


def find_by_holder(kind: str, holder_id: str) -> list[Licence]:
    """Licences of a holder, by the blind index of their ID number or USCC (newest first)."""
    value = (holder_id or "").strip().upper()
    if not value:
        return []
    return list(Licence.objects.filter(holder_index=holder_index(kind, value)).select_related("licence_type", "issuer"))


# --- the PDF form (版式文件) -------------------------------------------------------------------------


def is_holder(actor, licence: Licence) -> bool:
    """Whether ``actor`` holds ``licence``: the real-name verified person of its ID number, or its enterprise."""
    if _is_system(actor) or not getattr(actor, "is_authenticated", False):
        return False
    kind = getattr(actor, "kind", "")
    if licence.holder_kind == HolderKind.PERSON:
        digest = getattr(actor, "id_number_digest", "")
        return (
            kind == "person"
            and getattr(actor, "real_name_level", 1) >= 2
            and bool(digest)
            and digest == licence.holder_index
        )
    uscc = getattr(actor, "enterprise_uscc", "")
    return kind == "enterprise" and bool(uscc) and holder_index(HolderKind.ENTERPRISE, uscc) == licence.holder_index


def may_read_pdf(actor, licence: Licence) -> bool:
    """Who may download a licence's PDF: system actors, its issuer, its type's competent department, its holder."""
    if _is_system(actor):
        return True
    department = department_of(actor)
    if department is not None and department.pk in (licence.issuer_id, licence.licence_type.department_id):
        return True
    return is_holder(actor, licence)


def render_pdf(licence: Licence, *, actor) -> bytes:
    """The current version of a licence as a PDF sealed by its issuer (PAdES); refused to others, audited.

    Drawn and signed on each call (about half a second): nothing with personal data is kept on disk.
    """
    from dgov.licenses import pdfsign

    licence = Licence.objects.select_related("licence_type", "issuer").get(pk=licence.pk)
    if not may_read_pdf(actor, licence):
        raise _refuse("licenses.licence.pdf", actor=actor, target=licence, message=_("无权下载该证照"))
    data = pdfsign.licence_pdf(licence)
    with transaction.atomic():
        audit.record(
            "licenses.licence.pdf",
            actor=actor,
            target=licence,
            detail={
                "identifier": licence.identifier,
                "version": licence.version,
                "as": "holder" if is_holder(actor, licence) else "department",
            },
        )
    return data
