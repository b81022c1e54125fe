"""App configuration of the OpenID Connect provider."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OidcConfig(AppConfig):
    """dgov as an OpenID Connect provider (统一身份认证服务) for department systems and apps."""

    name = "dgov.oidc"
    label = "oidc"
    verbose_name = _("统一身份认证服务")

    def ready(self) -> None:
        """Connect the login/logout receivers and register the pages in the menus."""
        from dgov.oidc import views
        from dgov.oidc.services import authorization  # noqa: F401 - connects user_logged_in/out receivers
        from dgov.web import navigation

        navigation.register(
            "workbench",
            "oidc-clients",
            _("接入应用"),
            "oidc:client_list",
            permission=views.may_manage_clients,
            order=80,
        )
        navigation.register(
            "portal",
            "authorizations",
            _("已授权应用"),
            "oidc:my_authorizations",
            permission=lambda user: bool(user is not None and user.is_authenticated),
            order=95,
        )
