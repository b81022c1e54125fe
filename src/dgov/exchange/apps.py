"""App configuration of sharing and exchange."""

from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class ExchangeConfig(AppConfig):
    """共享交换: share requests, per-item grants, the data-service gateway and the exchange log."""

    name = "dgov.exchange"
    label = "exchange"
    verbose_name = _("共享交换")

    def ready(self) -> None:
        """Register the gateway's API scope, the workbench menu entry and the settings check."""
        from dgov.identity.services import API_SCOPES
        from dgov.web import navigation

        API_SCOPES.setdefault("exchange:call", _("调用共享交换网关（按共享授权读取、核验数据）"))
        navigation.register(
            "workbench", "exchange", _("共享交换"), "exchange:index", permission=navigation.officials_only, order=55
        )

    def seed_demo(self, *, province_code: str, seed: int) -> str:
        """Hook of `dgov demo`: requests, grants, a gateway client and logged calls (idempotent)."""
        from dgov.exchange import demo

        return demo.seed(province_code=province_code, seed=seed).summary()


@checks.register(checks.Tags.security)
def check_exchange_log(app_configs=None, **kwargs):
    """``exchange.E001``: the exchange log may be turned off only in a benchmark (``EXCHANGE_BENCHMARK``)."""
    from django.conf import settings

    if getattr(settings, "EXCHANGE_LOG_ENABLED", True) or getattr(settings, "EXCHANGE_BENCHMARK", False):
        return []
    return [
        checks.Error(
            "EXCHANGE_LOG_ENABLED = False is ignored: the exchange log can be turned off only for a benchmark "
            "(EXCHANGE_BENCHMARK = True).",
            id="exchange.E001",
        )
    ]
