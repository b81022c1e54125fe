"""``dgov exchange service add|list|change|suspend|resume|check``: department data services from the command line.

The operator acts as ``system:cli:<user>`` (audited) for any provider department. A service is
named by its resource code. The bearer secret is read from standard input (``--credential-stdin``)
so that it never appears in the process list or the shell history, and it is never printed.
"""

from __future__ import annotations

import json
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.utils import timezone

from dgov.catalog import services as catalog_services
from dgov.exchange import dataservice
from dgov.kernel.services.audit import cli_actor


def add_arguments(groups) -> None:
    """Add the ``service`` group to the ``dgov exchange`` sub-parsers."""
    service = groups.add_parser("service", help="department data services (部门数据服务)")
    sub = service.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="register a department's HTTP data service for a resource (登记)")
    add.add_argument("resource", help="resource code, e.g. 207000000/000001")
    add.add_argument("--url", required=True, help="endpoint URL (https)")
    add.add_argument("--timeout", type=int, default=None, help=f"seconds (1–{dataservice.MAX_TIMEOUT})")
    add.add_argument("--credential-stdin", action="store_true", help="read a bearer secret from standard input")
    add.add_argument("--description", default="")
    listing = sub.add_parser("list", help="list data services (never the secrets)")
    listing.add_argument("--provider", default="", help="only this provider department (code)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    change = sub.add_parser("change", help="change the endpoint, timeout, secret or description (修改)")
    change.add_argument("resource")
    change.add_argument("--url", default=None)
    change.add_argument("--timeout", type=int, default=None)
    change.add_argument("--credential-stdin", action="store_true", help="read a new bearer secret from standard input")
    change.add_argument("--clear-credential", action="store_true", help="remove the bearer secret")
    change.add_argument("--description", default=None)
    suspend = sub.add_parser("suspend", help="stop proxying to the service (暂停)")
    suspend.add_argument("resource")
    suspend.add_argument("--reason", required=True)
    resume = sub.add_parser("resume", help="proxy to a suspended service again (恢复)")
    resume.add_argument("resource")
    probe = sub.add_parser("check", help="probe the service with a signed empty request (检测); exit 1 on failure")
    probe.add_argument("resource")


def _service(code: str):
    """The data service of the resource with this code, or a CommandError."""
    service = dataservice.find_service(code)
    if service is None:
        raise CommandError(f"no data service for resource {code}")
    return service


def _secret(options) -> str:
    """The bearer secret from standard input, when asked for."""
    return sys.stdin.readline().strip() if options.get("credential_stdin") else ""


def _when(value) -> str:
    """A timestamp in the local time zone, or "-"."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "-"


def _row(service) -> dict:
    """A service as the listing shows it (the secret only as configured or not)."""
    return {
        "resource": service.resource.code,
        "resource_name": service.resource.name,
        "provider": service.provider.code,
        "endpoint_url": service.endpoint_url,
        "status": service.status,
        "status_reason": service.status_reason,
        "timeout": service.timeout,
        "credential": service.has_credential,
        "last_check": None
        if service.last_check_at is None
        else {"at": service.last_check_at.isoformat(), "ok": service.last_check_ok, "code": service.last_check_code},
    }


def handle(command, options) -> None:
    """Run one ``service`` action for the ``dgov exchange`` command."""
    action, actor, out = options["action"], cli_actor(), command.stdout
    try:
        if action == "add":
            resource = catalog_services.find_resource(options["resource"].replace("-", "/", 1))
            if resource is None:
                raise CommandError(f"no resource {options['resource']}")
            service = dataservice.register(
                resource,
                actor=actor,
                endpoint_url=options["url"],
                timeout=options["timeout"],
                credential=_secret(options),
                description=options["description"],
            )
            out.write(f"registered data service #{service.pk} for {resource.code} → {service.endpoint_url}")
        elif action == "list":
            rows = dataservice.services_of(actor).order_by("resource__code")
            if options["provider"]:
                rows = rows.filter(provider__code=options["provider"])
            data = [_row(service) for service in rows]
            if options["json"]:
                out.write(json.dumps(data, ensure_ascii=False, indent=2))
            for row in [] if options["json"] else data:
                check = row["last_check"]
                checked = "-" if check is None else ("ok" if check["ok"] else check["code"])
                out.write(
                    f"{row['resource']}  {row['provider']}  {row['status']}  {row['endpoint_url']}  "
                    f"timeout={row['timeout']}s  credential={'yes' if row['credential'] else 'no'}  check={checked}"
                )
        elif action == "change":
            service = dataservice.change(
                _service(options["resource"]),
                actor=actor,
                endpoint_url=options["url"],
                timeout=options["timeout"],
                credential=_secret(options) or None,
                clear_credential=options["clear_credential"],
                description=options["description"],
            )
            out.write(f"data service of {service.resource.code} updated ({_when(service.updated_at)})")
        elif action == "suspend":
            service = dataservice.suspend(_service(options["resource"]), actor=actor, reason=options["reason"])
            out.write(f"data service of {service.resource.code} suspended")
        elif action == "resume":
            service = dataservice.resume(_service(options["resource"]), actor=actor)
            out.write(f"data service of {service.resource.code} resumed")
        else:
            result = dataservice.check(_service(options["resource"]), actor=actor)
            out.write(
                f"{'OK' if result.ok else 'FAILED'} {result.code} {result.elapsed_ms} ms {result.reason}".rstrip()
            )
            if not result.ok:
                raise SystemExit(1)
    except ValidationError as exc:
        messages = [m for ms in exc.message_dict.values() for m in ms] if hasattr(exc, "error_dict") else exc.messages
        raise CommandError("; ".join(messages)) from None
