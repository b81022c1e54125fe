"""Public licence URLs under ``licences/`` (no login): verification, QR landing, issuers, status and trust lists."""

from django.urls import path
from django.utils.translation import gettext_lazy as _

from dgov.licenses import public_views, trust_views
from dgov.web import navigation

app_name = "licences_public"

urlpatterns = [
    path("verify/", public_views.verify_page, name="verify"),
    path("q/<str:payload>", public_views.qr_landing, name="qr"),
    path("issuers/<str:uscc>", public_views.issuer_document, name="issuer"),
    path("issuers/<str:uscc>/jwks.json", public_views.issuer_jwks, name="jwks"),
    path("status/<int:list_id>", public_views.status_list, name="status"),
    path("trust-list.json", trust_views.trust_list, name="trust_list"),  # signed trust list (互认)
]

navigation.register("portal", "licence_verify", _("证照核验"), "licences_public:verify", order=35)
