"""App configuration of the shared kernel."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KernelConfig(AppConfig):
    """The shared kernel (imports no other dgov app)."""

    name = "dgov.kernel"
    label = "kernel"
    verbose_name = _("共享内核")
