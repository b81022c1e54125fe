"""App configuration of the registries."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegistryConfig(AppConfig):
    """Base and theme libraries with one authoritative source per field."""

    name = "dgov.registry"
    label = "registry"
    verbose_name = _("基础信息库")
