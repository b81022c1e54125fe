"""URLs of one-stop services (一网通办) at the site root: portal /services/…, workbench /workbench/services/…."""

from django.urls import path

from dgov.services import views

app_name = "services"

urlpatterns = [
    path("services/", views.index, name="index"),
    path("services/bundles/", views.bundles, name="bundles"),
    path("services/items/<str:code>/", views.item, name="item"),
    path("workbench/services/items/", views.items, name="items"),
    path("workbench/services/drifts/", views.drifts, name="drifts"),
    path("workbench/services/drifts/check/", views.check, name="check"),
]

# Application pages (办件: apply, my applications, task inbox) from the process side, same namespace.
from dgov.services.process_urls import urlpatterns as _process_urlpatterns  # noqa: E402

urlpatterns += _process_urlpatterns
