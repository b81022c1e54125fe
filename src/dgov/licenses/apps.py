"""App configuration of e-licences (电子证照)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LicensesConfig(AppConfig):
    """电子证照: licence types, issuance, verifiable credentials, status lists and verification."""

    name = "dgov.licenses"
    label = "licenses"
    verbose_name = _("电子证照")

    def ready(self) -> None:
        """Register the API scopes and the workbench menu entry."""
        from dgov.identity.services import API_SCOPES
        from dgov.web import navigation

        API_SCOPES.setdefault("licences:read", _("查询本部门签发的电子证照和证照目录"))
        API_SCOPES.setdefault("licences:issue", _("签发、变更、延续、暂停、恢复、撤销本部门的电子证照（含批量签发）"))
        API_SCOPES.setdefault("licences:use", _("在持证主体授权范围内使用电子证照（用证）"))
        navigation.register(
            "workbench", "licences", _("电子证照"), "licenses:index", permission=navigation.officials_only, order=35
        )

    def seed_demo(self, *, province_code: str, seed: int) -> str:
        """Hook of `dgov demo`: the demo catalogue and licences for demo persons and enterprises (idempotent)."""
        from dgov.licenses import demo

        return demo.seed(province_code=province_code, seed=seed)
