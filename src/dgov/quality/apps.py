"""App configuration of data quality."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class QualityConfig(AppConfig):
    """数据质量: rules as data (GB/T 36344 dimensions), DuckDB runs, scores and department scorecards."""

    name = "dgov.quality"
    label = "quality"
    verbose_name = _("数据质量")

    def ready(self) -> None:
        """Register the API scope and the workbench menu entry."""
        from dgov.identity.services import API_SCOPES
        from dgov.web import navigation

        API_SCOPES.setdefault("quality:read", _("读取数据质量评分与检查结果（按部门范围）"))
        navigation.register(
            "workbench", "quality", _("数据质量"), "quality:index", permission=navigation.officials_only, order=57
        )

    def seed_demo(self, *, province_code: str, seed: int) -> str:
        """Hook of `dgov demo`: load the shipped base-library rule set and run it once (idempotent)."""
        from dgov.quality import demo

        return demo.seed()
