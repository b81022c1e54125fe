"""App configuration of data quality."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class QualityConfig(AppConfig):
    """数据质量: rules as data (GB/T 36344 dimensions), DuckDB runs, scores and department scorecards."""

    name = "dgov.quality"
    label = "quality"
    verbose_name = _("数据质量")

    def ready(self) -> None:
        """Register the API scopes, the workbench menu entries and the notification templates."""
        from dgov.identity.services import API_SCOPES
        from dgov.quality import rectification  # noqa: F401 - registers the work orders' notification templates
        from dgov.web import navigation

        API_SCOPES.setdefault("quality:read", _("读取数据质量评分与检查结果（按部门范围）"))
        API_SCOPES.setdefault("quality:rectify", _("答复本部门的数据质量整改工单"))
        navigation.register(
            "workbench", "quality", _("数据质量"), "quality:index", permission=navigation.officials_only, order=57
        )
        navigation.register(
            "workbench",
            "quality_orders",
            _("整改工单"),
            "quality:orders",
            permission=navigation.officials_only,
            order=58,
        )

    def seed_demo(self, *, province_code: str, seed: int) -> str:
        """Hook of `dgov demo`: load the shipped base-library rule set and run it once (idempotent)."""
        from dgov.quality import demo

        return demo.seed()
