"""The holder's wallet (我的证照) under /account/licences/, and its portal menu entry."""

from django.urls import path
from django.utils.translation import gettext_lazy as _

from dgov.licenses import wallet_views
from dgov.web import navigation

app_name = "wallet"

urlpatterns = [
    path("", wallet_views.index, name="index"),
    path("consents/<int:pk>/revoke/", wallet_views.consent_revoke, name="consent_revoke"),
    path("<str:identifier>/", wallet_views.licence_detail, name="licence"),
    path("<str:identifier>/credential.jwt", wallet_views.credential, name="credential"),
    path("<str:identifier>/licence.pdf", wallet_views.pdf, name="pdf"),
    path("<str:identifier>/consent/", wallet_views.consent_new, name="consent"),
]


def _holders(user) -> bool:
    """Menu permission: logged-in person and enterprise accounts (portal menus link only to public pages otherwise)."""
    return bool(user is not None and user.is_authenticated and getattr(user, "kind", "") in ("person", "enterprise"))


# The portal's "licences" key: the home page's 电子证照 card links here once it is registered.
navigation.register("portal", "licences", _("我的证照"), "wallet:index", permission=_holders, order=30)
