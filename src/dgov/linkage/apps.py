"""App configuration of entity resolution."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LinkageConfig(AppConfig):
    """实体识别: record linkage, deduplication, golden records; stored runs over registries (数据比对)."""

    name = "dgov.linkage"
    label = "linkage"
    verbose_name = _("实体识别")

    def ready(self) -> None:
        """Register the workbench menu entry."""
        from dgov.web import navigation

        navigation.register(
            "workbench", "linkage", _("数据比对"), "linkage:index", permission=navigation.officials_only, order=59
        )
