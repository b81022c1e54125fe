"""App configuration of sharing and exchange."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExchangeConfig(AppConfig):
    """共享交换: share requests, per-item grants, the data-service gateway and the exchange log."""

    name = "dgov.exchange"
    label = "exchange"
    verbose_name = _("共享交换")

    def ready(self) -> None:
        """Register the gateway's API scope and the workbench menu entry."""
        from dgov.identity.services import API_SCOPES
        from dgov.web import navigation

        API_SCOPES.setdefault("exchange:call", _("调用共享交换网关（按共享授权读取、核验数据）"))
        navigation.register(
            "workbench", "exchange", _("共享交换"), "exchange:index", permission=navigation.officials_only, order=55
        )
