"""App configuration of the information resource catalogue."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CatalogConfig(AppConfig):
    """政务信息资源目录: resources, information items, versions, reviews, Chinese search, DCAT-AP."""

    name = "dgov.catalog"
    label = "catalog"
    verbose_name = _("政务信息资源目录")

    def ready(self) -> None:
        """Register the catalogue pages in the workbench menu."""
        from dgov.catalog import services
        from dgov.web import navigation

        navigation.register(
            "workbench", "catalog", _("资源目录"), "catalog:index", permission=navigation.officials_only, order=50
        )
        navigation.register(
            "workbench",
            "catalog_reviews",
            _("目录审核"),
            "catalog:reviews",
            permission=services.may_review_any,
            order=51,
        )

    def seed_demo(self, *, province_code: str, seed: int) -> str:
        """Hook of `dgov demo`: seed the demo catalogue (idempotent) and say what was done."""
        from dgov.catalog import demo

        return demo.seed(province_code=province_code).summary()
