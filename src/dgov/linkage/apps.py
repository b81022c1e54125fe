"""App configuration of entity resolution."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LinkageConfig(AppConfig):
    """实体识别: record linkage, deduplication and golden records (no models in this slice)."""

    name = "dgov.linkage"
    label = "linkage"
    verbose_name = _("实体识别")
