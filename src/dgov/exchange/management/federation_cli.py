"""``dgov exchange peer add|list|suspend|resume|sync|keys``: federation peers (级联对端) from the command line.

``peer keys`` prints this instance's code and federation public keys (JSON) to hand to a peer's
operator; ``peer add CODE --name … --url … --division … (--keys-file FILE | --fetch-keys)`` pins a
peer's keys (``--fetch-keys`` trusts the peer's ``/keys`` on first use: compare the printed
fingerprints with the peer's operator); ``peer keys CODE --fetch|--keys-file`` re-pins them after
the peer rotated its key. The operator acts as ``system:cli:<user>`` (audited).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.utils import timezone

from dgov.exchange import federation
from dgov.exchange import federation_exchange as exchange
from dgov.exchange.models import Peer
from dgov.kernel.services.audit import cli_actor


def add_arguments(groups) -> None:
    """Add the ``peer`` group to the ``dgov exchange`` sub-parsers."""
    peer = groups.add_parser("peer", help="federation peers (级联对端)")
    sub = peer.add_subparsers(dest="peer_action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="register a peer instance and pin its keys (登记对端)")
    add.add_argument("code", help="the peer's federation code (its FEDERATION_INSTANCE)")
    add.add_argument("--name", required=True)
    add.add_argument("--url", required=True, help="the peer's base URL (https)")
    add.add_argument("--division", required=True, help="division code where its departments' mirrors are placed")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--keys-file", help="the peer's keys document (output of its `peer keys`)")
    source.add_argument(
        "--fetch-keys", action="store_true", help="fetch the peer's published keys (trust on first use)"
    )
    listing = sub.add_parser("list", help="list peers")
    listing.add_argument("--json", action="store_true")
    suspend = sub.add_parser("suspend", help="stop exchanging with a peer (暂停)")
    suspend.add_argument("code")
    suspend.add_argument("--reason", required=True)
    resume = sub.add_parser("resume", help="exchange with a suspended peer again (恢复)")
    resume.add_argument("code")
    sync = sub.add_parser(
        "sync", help="pull a peer's catalogue and poll request statuses now (同步); exit 1 on failure"
    )
    sync.add_argument("code", nargs="?", default="", help="one peer (default: every active peer)")
    keys = sub.add_parser("keys", help="print this instance's keys, or re-pin a peer's keys (公钥)")
    keys.add_argument("code", nargs="?", default="", help="a peer whose keys to re-pin")
    refresh = keys.add_mutually_exclusive_group()
    refresh.add_argument("--fetch", action="store_true", help="fetch the peer's published keys")
    refresh.add_argument("--keys-file", help="a keys document of the peer")


def _peer(code: str) -> Peer:
    """The peer with this code, or a CommandError."""
    peer = federation.find_peer(code)
    if peer is None:
        raise CommandError(f"no peer {code}")
    return peer


def _errors(exc: ValidationError) -> str:
    """A ValidationError's messages on one line."""
    return "; ".join(exc.messages)


def _document(options, base_url: str) -> dict:
    """A keys document from ``--keys-file`` or fetched from the peer."""
    path = options.get("keys_file")
    if path:
        try:
            return json.loads(Path(path).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read keys document {path}: {exc}") from None
    return federation.fetch_keys(base_url)


def _print_fingerprints(command, peer: Peer) -> None:
    """Print the pinned keys' fingerprints (to compare with the peer's operator)."""
    for key in peer.keys:
        command.stdout.write(f"  {key['kid']}  {federation.fingerprint(key['public_key'])}")


def handle(command, options) -> None:
    """Run a ``peer`` subcommand."""
    action = options["peer_action"]
    try:
        if action == "add":
            document = _document(options, options["url"])
            if isinstance(document, dict) and document.get("instance") not in (None, options["code"]):
                raise CommandError(
                    f"the keys document is of instance {document.get('instance')}, not {options['code']}"
                )
            peer = federation.add_peer(
                code=options["code"],
                name=options["name"],
                base_url=options["url"],
                division=options["division"],
                keys=document,
                actor=cli_actor(),
            )
            command.stdout.write(f"peer {peer.code} added; pinned keys:")
            _print_fingerprints(command, peer)
        elif action == "list":
            rows = [
                {
                    "code": p.code,
                    "name": p.name,
                    "base_url": p.base_url,
                    "status": p.status,
                    "division": p.division.code,
                    "kids": [k["kid"] for k in p.keys],
                    "last_sync_at": timezone.localtime(p.last_sync_at).isoformat() if p.last_sync_at else None,
                    "last_sync_ok": p.last_sync_ok,
                    "last_sync_code": p.last_sync_code,
                }
                for p in Peer.objects.select_related("division").order_by("code")
            ]
            if options["json"]:
                command.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2))
            for row in [] if options["json"] else rows:
                ok = row["last_sync_ok"]
                outcome = "" if ok is None else ("ok" if ok else row["last_sync_code"])
                command.stdout.write(
                    f"{row['code']}\t{row['status']}\t{row['base_url']}\t{row['name']}\t"
                    f"last sync {row['last_sync_at'] or '-'} {outcome}"
                )
        elif action == "suspend":
            federation.suspend(_peer(options["code"]), actor=cli_actor(), reason=options["reason"])
            command.stdout.write(f"peer {options['code']} suspended")
        elif action == "resume":
            federation.resume(_peer(options["code"]), actor=cli_actor())
            command.stdout.write(f"peer {options['code']} resumed")
        elif action == "sync":
            peers = (
                [_peer(options["code"])]
                if options["code"]
                else list(Peer.objects.filter(status=Peer.Status.ACTIVE).order_by("code"))
            )
            failed = False
            for peer in peers:
                outcome = exchange.sync_peer(peer, actor=cli_actor())
                failed = failed or not outcome["ok"]
                command.stdout.write(json.dumps({"peer": peer.code, **outcome}, ensure_ascii=False))
            if failed:
                raise SystemExit(1)
        elif options["code"]:
            peer = _peer(options["code"])
            if not (options.get("fetch") or options.get("keys_file")):
                _print_fingerprints(command, peer)
                return
            peer = federation.set_keys(peer, _document(options, peer.base_url), actor=cli_actor())
            command.stdout.write(f"peer {peer.code}: pinned keys replaced:")
            _print_fingerprints(command, peer)
        else:
            command.stdout.write(json.dumps(federation.keys_document(), ensure_ascii=False, indent=2))
    except ValidationError as exc:
        raise CommandError(_errors(exc)) from None
