"""``dgov oidc client create|list|rotate|deactivate``, ``dgov oidc key list|rotate``, ``dgov oidc purge``.

``client create --name NAME --org CODE --redirect-uri URI …`` registers a relying party and prints
its client_id and secret — the secret only this once (it is stored as a keyed hash). Public
clients (``--type public``) have no secret and must use PKCE. ``client rotate CLIENT_ID`` prints a
new secret; ``client deactivate CLIENT_ID`` stops a client and revokes its tokens. ``key rotate
--alg RS256|ES256|SM2`` replaces a signing key (the old one stays in the JWKS); ``purge`` deletes
expired codes and tokens.

``upstream add --slug national --name 国家政务服务平台 --issuer URL --client-id ID`` (secret on
standard input) configures an upstream provider people may log in with (identity brokering);
``upstream list``, ``upstream disable|enable SLUG`` and ``upstream check SLUG`` (fetches its
discovery document and keys) go with it.
"""

from __future__ import annotations

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.kernel.models import Organization
from dgov.kernel.services.audit import cli_actor
from dgov.oidc import jose
from dgov.oidc.models import Client, UpstreamProvider
from dgov.oidc.services import broker, clients, keys, tokens


def _when(value) -> str:
    """A timestamp in the local time zone, or "-"."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "-"


def _width(text: str) -> int:
    """Display width: CJK characters take two columns."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


class Command(BaseCommand):
    """OpenID Connect provider administration from the command line."""

    help = (
        "统一身份认证服务：client create/list/rotate/deactivate，key list/rotate，purge，"
        "upstream add/list/disable/enable/check"
    )

    def add_arguments(self, parser):
        """Declare the ``client`` and ``key`` groups and ``purge``."""
        groups = parser.add_subparsers(dest="group", required=True)
        client = groups.add_parser("client", help=_("接入应用"))
        sub = client.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help=_("登记接入应用并显示一次性密钥"))
        create.add_argument("--name", required=True, help=_("应用名称"))
        create.add_argument("--org", required=True, help=_("所属部门编码，如 370000-GA"))
        create.add_argument("--type", dest="client_type", choices=Client.Type.values, default="confidential")
        create.add_argument("--redirect-uri", action="append", default=[], help=_("回调地址（可重复）"))
        create.add_argument("--post-logout-uri", action="append", default=[], help=_("退出后跳转地址（可重复）"))
        create.add_argument(
            "--grant-types",
            nargs="+",
            default=None,
            choices=list(clients.GRANT_TYPES),
            help=_("授权类型（默认 authorization_code refresh_token）"),
        )
        create.add_argument("--scopes", nargs="+", default=None, help=_("允许的权限范围（默认 openid profile）"))
        create.add_argument("--alg", choices=Client.Alg.values, default="RS256", help=_("身份令牌签名算法"))
        create.add_argument("--first-party", action="store_true", help=_("平台自有应用，不询问用户授权"))
        create.add_argument("--client-id", default="", help=_("指定客户端标识（默认按部门编码生成）"))
        sub.add_parser("list", help=_("列出接入应用（不显示密钥）"))
        rotate = sub.add_parser("rotate", help=_("更换客户端密钥并显示新密钥"))
        rotate.add_argument("client_id")
        deactivate = sub.add_parser("deactivate", help=_("停用接入应用并撤销其全部令牌"))
        deactivate.add_argument("client_id")
        deactivate.add_argument("--reason", default="", help=_("停用原因"))
        key = groups.add_parser("key", help=_("令牌签名密钥"))
        key_sub = key.add_subparsers(dest="action", required=True)
        key_sub.add_parser("list", help=_("列出签名密钥"))
        key_rotate = key_sub.add_parser("rotate", help=_("轮换签名密钥（旧公钥仍在 JWKS 中发布）"))
        key_rotate.add_argument("--alg", choices=jose.ALGORITHMS, required=True)
        groups.add_parser("purge", help=_("删除已过期的授权码和令牌"))
        self._add_upstream_arguments(groups)

    def handle(self, *args, **options):
        """Dispatch to ``handle_<group>[_<action>]``."""
        name = f"handle_{options['group']}" + (f"_{options['action']}" if options.get("action") else "")
        return getattr(self, name)(**options)

    @staticmethod
    def _client(client_id: str) -> Client:
        """The client with this id, or a CommandError."""
        client = Client.objects.select_related("organization").filter(client_id=client_id).first()
        if client is None:
            raise CommandError(_("接入应用 %(id)s 不存在") % {"id": client_id})
        return client

    def handle_client_create(
        self,
        *,
        name,
        org,
        client_type,
        redirect_uri,
        post_logout_uri,
        grant_types,
        scopes,
        alg,
        first_party,
        client_id,
        **options,
    ):
        """Register a client and print its credentials once."""
        organization = Organization.objects.filter(code=org).first()
        if organization is None:
            raise CommandError(_("部门 %(code)s 不存在") % {"code": org})
        if grant_types is None:
            grant_types = ["authorization_code"] if client_type == "public" else ["authorization_code", "refresh_token"]
        try:
            client, secret = clients.create_client(
                name=name,
                organization=organization,
                actor=cli_actor(),
                client_type=client_type,
                redirect_uris=redirect_uri,
                post_logout_redirect_uris=post_logout_uri,
                grant_types=grant_types,
                scopes=scopes if scopes is not None else ["openid", "profile"],
                id_token_alg=alg,
                first_party=first_party,
                client_id=client_id,
            )
        except ValidationError as exc:
            raise CommandError("；".join(exc.messages)) from None
        self.stdout.write(_("已登记接入应用：%(name)s") % {"name": client.name})
        self.stdout.write(f"client_id: {client.client_id}")
        if secret:
            self.stdout.write(f"client_secret: {secret}")
            self.stdout.write(_("密钥只显示这一次，请妥善保存；遗失后只能更换（client rotate）。"))
        self.stdout.write(f"issuer: {tokens.issuer()}")

    def handle_client_list(self, **options):
        """Print every client as a table (no secrets)."""
        rows = list(Client.objects.select_related("organization").order_by("client_id"))
        if not rows:
            self.stdout.write(_("尚无接入应用。"))
            return
        headers = [_("客户端标识"), _("名称"), _("类型"), _("部门"), _("授权类型"), _("算法"), _("状态")]
        table = [
            [
                c.client_id,
                c.name,
                c.client_type,
                c.organization.code,
                ",".join(c.grant_types),
                c.id_token_alg,
                _("启用") if c.is_active else _("停用"),
            ]
            for c in rows
        ]
        self._table(headers, table)

    def handle_client_rotate(self, *, client_id: str, **options):
        """Give a client a new secret and print it once."""
        try:
            secret = clients.rotate_secret(self._client(client_id), actor=cli_actor())
        except ValidationError as exc:
            raise CommandError("；".join(exc.messages)) from None
        self.stdout.write(f"client_id: {client_id}")
        self.stdout.write(f"client_secret: {secret}")
        self.stdout.write(_("旧密钥已失效。新密钥只显示这一次，请妥善保存。"))

    def handle_client_deactivate(self, *, client_id: str, reason: str = "", **options):
        """Stop a client."""
        clients.deactivate_client(self._client(client_id), actor=cli_actor(), reason=reason)
        self.stdout.write(_("接入应用 %(id)s 已停用，其令牌已全部撤销。") % {"id": client_id})

    def handle_key_list(self, **options):
        """Print the signing keys."""
        rows = [[k.kid, k.alg, k.status, _when(k.created_at), _when(k.retired_at)] for k in keys.list_keys()]
        if not rows:
            self.stdout.write(_("尚无签名密钥（首次签发令牌时自动生成）。"))
            return
        self._table([_("密钥标识"), _("算法"), _("状态"), _("创建"), _("停用")], rows)

    def handle_key_rotate(self, *, alg: str, **options):
        """Rotate the signing key of one algorithm."""
        record = keys.rotate_key(alg, actor=cli_actor())
        self.stdout.write(
            _("新的 %(alg)s 签名密钥：%(kid)s（旧公钥仍在 JWKS 中发布）") % {"alg": alg, "kid": record.kid}
        )

    def handle_purge(self, **options):
        """Delete expired codes and tokens."""
        counts = tokens.purge_expired()
        self.stdout.write(
            _("已删除：授权码 %(codes)s，访问令牌 %(access_tokens)s，刷新令牌 %(refresh_tokens)s") % counts
        )

    # --- upstream providers (identity brokering, docs/oidc.md "Brokering") ---------------------------

    @staticmethod
    def _add_upstream_arguments(groups) -> None:
        """Declare ``upstream add|list|disable|enable|check``."""
        up = groups.add_parser("upstream", help=_("上游身份提供方（身份联合）"))
        sub = up.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help=_("登记上游身份提供方（如国家政务服务平台）"))
        add.add_argument("--slug", required=True, help=_("标识，用于登录地址 /login/upstream/<标识>/"))
        add.add_argument("--name", required=True, help=_("名称（中文），登录页显示“使用…登录”"))
        add.add_argument("--name-en", default="", help=_("名称（英文）"))
        add.add_argument("--issuer", required=True, help=_("签发者（issuer）地址"))
        add.add_argument("--client-id", required=True, help=_("本平台在上游登记的客户端标识"))
        add.add_argument(
            "--client-secret",
            default="-",
            help=_("客户端密钥；“-”（默认）从标准输入读取，避免出现在进程列表中"),
        )
        add.add_argument(
            "--scopes", nargs="+", default=["openid", "profile", "dgov:identity"], help=_("请求的权限范围")
        )
        add.add_argument("--id-claim", default="dgov_id_number", help=_("身份证号码所在的声明"))
        add.add_argument("--name-claim", default="dgov_real_name", help=_("经核验姓名所在的声明"))
        add.add_argument(
            "--acr-level",
            action="append",
            default=[],
            metavar="ACR=LEVEL",
            help=_("上游 acr 对应的实名等级（可重复；* 表示其他或缺失的 acr）；urn:dgov:loa:N 无需配置"),
        )
        add.add_argument("--max-level", type=int, choices=(1, 2, 3), default=2, help=_("最高信任等级（默认 2）"))
        add.add_argument("--allow-create", action="store_true", help=_("本平台没有对应个人账号时自动创建"))
        add.add_argument("--disabled", action="store_true", help=_("登记但暂不启用"))
        sub.add_parser("list", help=_("列出上游身份提供方（不显示密钥）"))
        for name, text in (("disable", _("停用上游身份提供方")), ("enable", _("启用上游身份提供方"))):
            sub.add_parser(name, help=text).add_argument("slug")
        check = sub.add_parser("check", help=_("获取上游的发现文档和公钥，检查能否对接"))
        check.add_argument("slug")

    @staticmethod
    def _provider(slug: str) -> UpstreamProvider:
        """The provider ``slug``, or a CommandError."""
        provider = UpstreamProvider.objects.filter(slug=slug).first()
        if provider is None:
            raise CommandError(_("上游身份提供方 %(slug)s 不存在") % {"slug": slug})
        return provider

    def handle_upstream_add(self, *, slug, name, name_en, issuer, client_id, client_secret, scopes, **options):
        """Configure an upstream provider and print the redirect URI to register there."""
        if client_secret == "-":
            client_secret = sys.stdin.readline().strip()
        try:
            provider = broker.create_provider(
                slug=slug,
                name_zh=name,
                name_en=name_en,
                issuer=issuer,
                client_id=client_id,
                client_secret=client_secret,
                scopes=scopes,
                id_number_claim=options["id_claim"],
                name_claim=options["name_claim"],
                acr_levels=options["acr_level"],
                max_level=options["max_level"],
                allow_create=options["allow_create"],
                enabled=not options["disabled"],
                actor=cli_actor(),
            )
        except ValidationError as exc:
            raise CommandError("；".join(exc.messages)) from None
        names = {"name": provider.name_zh, "slug": provider.slug}
        self.stdout.write(_("已登记上游身份提供方：%(name)s（%(slug)s）") % names)
        self.stdout.write(f"redirect_uri: {broker.callback_url(provider)}")
        self.stdout.write(_("请在上游平台登记以上回调地址，并允许权限范围：%(s)s") % {"s": " ".join(provider.scopes)})

    def handle_upstream_list(self, **options):
        """Print every upstream provider (no secrets)."""
        rows = [
            [
                p.slug,
                p.name_zh,
                p.issuer,
                p.client_id,
                str(p.max_level),
                _("是") if p.allow_create else _("否"),
                _("启用") if p.enabled else _("停用"),
                str(p.identities.filter(unlinked_at__isnull=True).count()),
            ]
            for p in UpstreamProvider.objects.order_by("slug")
        ]
        if not rows:
            self.stdout.write(_("尚无上游身份提供方。"))
            return
        headers = [_("标识"), _("名称"), _("签发者"), _("客户端标识"), _("最高等级"), _("自动建号"), _("状态")]
        headers.append(_("关联数"))
        self._table(headers, rows)

    def handle_upstream_disable(self, *, slug: str, **options):
        """Disable a provider: off the login page, callbacks refused."""
        broker.set_enabled(self._provider(slug), False, actor=cli_actor())
        self.stdout.write(_("上游身份提供方 %(slug)s 已停用。") % {"slug": slug})

    def handle_upstream_enable(self, *, slug: str, **options):
        """Enable a provider again."""
        broker.set_enabled(self._provider(slug), True, actor=cli_actor())
        self.stdout.write(_("上游身份提供方 %(slug)s 已启用。") % {"slug": slug})

    def handle_upstream_check(self, *, slug: str, **options):
        """Fetch the provider's discovery document and keys and say what was found."""
        provider = self._provider(slug)
        try:
            metadata, keys_found = broker.check_provider(provider)
        except broker.upstream.UpstreamError as exc:
            raise CommandError(_("无法对接 %(slug)s：%(error)s") % {"slug": slug, "error": str(exc)}) from None
        self.stdout.write(f"issuer: {metadata.issuer}")
        self.stdout.write(f"authorization_endpoint: {metadata.authorization_endpoint}")
        self.stdout.write(f"token_endpoint: {metadata.token_endpoint}")
        self.stdout.write(f"userinfo_endpoint: {metadata.userinfo_endpoint or '-'}")
        self.stdout.write(f"jwks_uri: {metadata.jwks_uri} ({', '.join(keys_found) or '-'})")
        self.stdout.write(f"redirect_uri: {broker.callback_url(provider)}")

    def _table(self, headers, rows) -> None:
        """Print rows aligned by display width."""
        widths = [max(_width(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
        for row in [headers, *rows]:
            cells = [str(cell) + " " * (widths[i] - _width(str(cell))) for i, cell in enumerate(row)]
            self.stdout.write("  ".join(cells).rstrip())
