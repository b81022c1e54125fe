"""``dgov identity client create|list|rotate|deactivate``: manage API clients (接口客户端).

``client create --name NAME --org CODE --scopes registry:read registry:write`` creates a client
for the department with code CODE and prints its client_id and secret — the secret is shown only
this once (it is stored as a keyed hash). ``client list`` shows every client without secrets;
``client rotate CLIENT_ID`` prints a new secret; ``client deactivate CLIENT_ID`` stops a client.
Each subcommand has its own handler so later identity subcommands can be added beside them.

``mfa reset USERNAME`` removes an account's second factors (a lost phone: the account enrols
again at its next login); ``mfa code [--secret BASE32]`` prints the current TOTP code of a secret,
by default the demo accounts' published one (ADR 0012); ``login unlock USERNAME`` lifts a
temporary lock after failed logins.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.identity import services
from dgov.identity.models import ApiClient
from dgov.kernel.models import Organization
from dgov.kernel.services.audit import cli_actor


def _when(value) -> str:
    """A timestamp in the local time zone, or "-"."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "-"


def _errors(exc: ValidationError) -> str:
    """A ValidationError's messages on one line."""
    return "；".join(exc.messages)


class Command(BaseCommand):
    """Identity administration from the command line: API clients, second factors, login locks."""

    help = (
        "统一身份认证管理：client create/list/rotate/deactivate 管理接口客户端；"
        "mfa reset/code 双因素认证；login unlock 解除登录锁定；realname in-person 现场核验（三级实名）"
    )

    def add_arguments(self, parser):
        """Declare ``client`` and its subcommands."""
        groups = parser.add_subparsers(dest="group", required=True)
        client = groups.add_parser("client", help=_("接口客户端"))
        sub = client.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help=_("创建接口客户端并显示一次性密钥"))
        create.add_argument("--name", required=True, help=_("客户端名称，如“省卫健委业务系统”"))
        create.add_argument("--org", required=True, help=_("所属部门编码，如 370000-WJ"))
        create.add_argument(
            "--scopes",
            nargs="+",
            default=["registry:read"],
            help=_("权限范围（可多个）：%(scopes)s") % {"scopes": ", ".join(services.API_SCOPES)},
        )
        create.add_argument("--client-id", default="", help=_("指定客户端标识（默认按部门编码生成）"))
        sub.add_parser("list", help=_("列出接口客户端（不显示密钥）"))
        rotate = sub.add_parser("rotate", help=_("更换客户端密钥并显示新密钥"))
        rotate.add_argument("client_id")
        deactivate = sub.add_parser("deactivate", help=_("停用客户端"))
        deactivate.add_argument("client_id")
        deactivate.add_argument("--reason", default="", help=_("停用原因"))
        mfa = groups.add_parser("mfa", help=_("双因素认证"))
        mfa_sub = mfa.add_subparsers(dest="action", required=True)
        reset = mfa_sub.add_parser("reset", help=_("重置账号的双因素认证（用户丢失手机时）"))
        reset.add_argument("username")
        reset.add_argument("--reason", default="", help=_("重置原因"))
        code = mfa_sub.add_parser("code", help=_("显示 TOTP 密钥当前的动态口令（默认：演示账号的公开密钥）"))
        code.add_argument("--secret", default="", help=_("Base32 密钥（默认为演示密钥）"))
        login = groups.add_parser("login", help=_("登录限制"))
        login_sub = login.add_subparsers(dest="action", required=True)
        unlock = login_sub.add_parser("unlock", help=_("解除账号因登录失败被临时锁定"))
        unlock.add_argument("username")
        realname_group = groups.add_parser("realname", help=_("实名认证"))
        realname_sub = realname_group.add_subparsers(dest="action", required=True)
        in_person = realname_sub.add_parser(
            "in-person", help=_("窗口工作人员记录已现场核验身份证件：账号升为三级实名（须已通过二级核验）")
        )
        in_person.add_argument("username")
        in_person.add_argument("--official", required=True, help=_("进行现场核验的工作人员账号"))

    def handle(self, *args, **options):
        """Dispatch to ``handle_<group>_<action>``."""
        action = options["action"].replace("-", "_")
        return getattr(self, f"handle_{options['group']}_{action}")(**options)


    @staticmethod
    def _client(client_id: str) -> ApiClient:
        """The client with this id, or a CommandError."""
        client = ApiClient.objects.select_related("organization").filter(client_id=client_id).first()
        if client is None:
            raise CommandError(_("客户端 %(id)s 不存在") % {"id": client_id})
        return client

    def handle_client_create(self, *, name: str, org: str, scopes: list[str], client_id: str = "", **options):
        """Create a client and print its credentials once."""
        organization = Organization.objects.filter(code=org).first()
        if organization is None:
            raise CommandError(_("部门 %(code)s 不存在") % {"code": org})
        try:
            client, secret = services.create_api_client(
                name, organization, scopes, actor=cli_actor(), client_id=client_id
            )
        except ValidationError as exc:
            raise CommandError(_errors(exc)) from None
        self.stdout.write(_("已创建接口客户端：%(name)s") % {"name": client.name})
        self.stdout.write(f"client_id: {client.client_id}")
        self.stdout.write(f"client_secret: {secret}")
        self.stdout.write(_("密钥只显示这一次，请妥善保存；遗失后只能更换（client rotate）。"))

    def handle_client_list(self, **options):
        """Print every client as a table (no secrets)."""
        clients = list(ApiClient.objects.select_related("organization").order_by("client_id"))
        if not clients:
            self.stdout.write(_("尚无接口客户端。"))
            return
        headers = [_("客户端标识"), _("名称"), _("部门"), _("权限范围"), _("状态"), _("最近使用")]
        rows = [
            [
                c.client_id,
                c.name,
                c.organization.code,
                ",".join(c.scopes or []),
                _("启用") if c.is_active else _("停用"),
                _when(c.last_used_at),
            ]
            for c in clients
        ]
        widths = [max(_width(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
        for row in [headers, *rows]:
            self.stdout.write("  ".join(_pad(str(cell), widths[i]) for i, cell in enumerate(row)).rstrip())

    def handle_client_rotate(self, *, client_id: str, **options):
        """Give a client a new secret and print it once."""
        try:
            secret = services.rotate_client_secret(self._client(client_id), actor=cli_actor())
        except ValidationError as exc:  # a deactivated client
            raise CommandError(_errors(exc)) from None
        self.stdout.write(f"client_id: {client_id}")
        self.stdout.write(f"client_secret: {secret}")
        self.stdout.write(_("旧密钥已失效。新密钥只显示这一次，请妥善保存。"))

    def handle_client_deactivate(self, *, client_id: str, reason: str = "", **options):
        """Stop a client."""
        services.deactivate_api_client(self._client(client_id), actor=cli_actor(), reason=reason)
        self.stdout.write(_("客户端 %(id)s 已停用。") % {"id": client_id})

    def _user(self, username: str):
        """The account with this user name, or a CommandError."""
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(_("账号 %(name)s 不存在") % {"name": username})
        return user

    def handle_mfa_reset(self, *, username: str, reason: str = "", **options):
        """Remove every second factor of an account (it enrols again at its next login)."""
        count = services.reset_mfa(self._user(username), actor=cli_actor(), reason=reason)
        self.stdout.write(_("已重置 %(name)s 的双因素认证（删除 %(count)d 项）。") % {"name": username, "count": count})

    def handle_mfa_code(self, *, secret: str = "", **options):
        """Print the current TOTP code of a secret (an oathtool stand-in for the demo)."""
        from dgov.identity import authentication, totp

        try:
            secret = totp.normalize_secret(secret or authentication.DEMO_TOTP_SECRET)
        except ValueError:
            raise CommandError(_("不是有效的 Base32 密钥")) from None
        step = totp.current_step()
        remaining = totp.PERIOD - int(timezone.now().timestamp()) % totp.PERIOD
        self.stdout.write(totp.code_at(secret, step))
        self.stderr.write(_("%(s)d 秒后更新") % {"s": remaining})

    def handle_login_unlock(self, *, username: str, **options):
        """Lift a temporary login lock of an account."""
        from dgov.identity import authentication

        authentication.unlock_account(self._user(username), actor=cli_actor())
        self.stdout.write(_("已解除 %(name)s 的登录锁定。") % {"name": username})


    def handle_realname_in_person(self, *, username: str, official: str, **options):
        """Record that an official checked the account holder's ID document in person (level 3)."""
        from dgov.identity import realname

        try:
            user = realname.record_in_person_verification(self._user(username), actor=self._user(official))
        except realname.RealNameError as exc:
            raise CommandError(str(exc.message)) from None
        self.stdout.write(
            _("%(name)s 的实名等级：%(level)s") % {"name": username, "level": user.get_real_name_level_display()}
        )


def _width(text: str) -> int:
    """Display width: CJK characters take two columns."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    """Pad to a display width."""
    return text + " " * (width - _width(text))
