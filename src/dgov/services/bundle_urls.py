"""URLs of 一件事 pages (combined form, bundle cases, proactive offers), included into the ``services`` namespace."""

from django.urls import path

from dgov.services import bundle_views

urlpatterns = [
    path("services/bundles/<str:code>/apply/", bundle_views.apply, name="bundle_apply"),
    path("services/my/bundles/<str:number>/", bundle_views.my_case, name="my_bundle_case"),
    path("services/my/offers/<int:offer_id>/", bundle_views.my_offer, name="my_offer"),
    path("services/my/offers/<int:offer_id>/decline/", bundle_views.decline_offer, name="decline_offer"),
]
