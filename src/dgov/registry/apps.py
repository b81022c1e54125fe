"""App configuration of the registries."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegistryConfig(AppConfig):
    """Base and theme libraries with one authoritative source per field."""

    name = "dgov.registry"
    label = "registry"
    verbose_name = _("基础信息库")

    def ready(self) -> None:
        """Register the officials' registry pages in the workbench menu."""
        from dgov.web import navigation

        navigation.register(
            "workbench", "registries", _("信息库"), "registry:index", permission=navigation.officials_only, order=30
        )
        navigation.register(
            "workbench",
            "corrections",
            _("纠错待办"),
            "registry:corrections",
            permission=navigation.officials_only,
            order=31,
        )
