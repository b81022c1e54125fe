"""App configuration of the web shell."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebConfig(AppConfig):
    """Portal and workbench pages."""

    name = "dgov.web"
    label = "web"
    verbose_name = _("门户与工作台")
