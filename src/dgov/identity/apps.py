"""App configuration of identity."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IdentityConfig(AppConfig):
    """Accounts, real-name levels and (later) the OIDC provider."""

    name = "dgov.identity"
    label = "identity"
    verbose_name = _("统一身份认证")

    def ready(self) -> None:
        """Connect the login/logout signal receivers that track sessions; add the API client pages to the menu."""
        from dgov.identity import sessions  # noqa: F401

        # The API client administration pages, for platform and big-data bureau administrators.
        from dgov.identity.client_views import may_open
        from dgov.web import navigation

        navigation.register(
            "workbench", "api_clients", _("接口客户端管理"), "api_clients:index", permission=may_open, order=80
        )
        # The window page of real-name level 3 (现场核验), for window staff.
        from dgov.identity.realname import may_record_in_person

        navigation.register(
            "workbench", "in_person", _("现场核验"), "identity:in_person", permission=may_record_in_person, order=40
        )
