"""App configuration of identity."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IdentityConfig(AppConfig):
    """Accounts, real-name levels and (later) the OIDC provider."""

    name = "dgov.identity"
    label = "identity"
    verbose_name = _("统一身份认证")
