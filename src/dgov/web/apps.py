"""App configuration of the web shell."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebConfig(AppConfig):
    """Portal and workbench pages."""

    name = "dgov.web"
    label = "web"
    verbose_name = _("门户与工作台")

    def ready(self) -> None:
        """Register the shell's own menu entries and customize the admin site."""
        from dgov.web import admin_site, navigation

        navigation.register("portal", "home", _("首页"), "web:home", order=0)
        navigation.register("portal", "divisions", _("行政区划"), "web:divisions", order=90)
        navigation.register(
            "workbench",
            "home",
            _("工作台首页"),
            "web:workbench",
            permission=navigation.officials_only,
            order=0,
        )
        admin_site.customize()
