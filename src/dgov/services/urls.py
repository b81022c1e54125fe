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

# One-window acceptance (一窗受理) and material downloads, same namespace.
from dgov.services.window_urls import urlpatterns as _window_urlpatterns  # noqa: E402

urlpatterns += _window_urlpatterns

# 一件事: the combined form, bundle cases and proactive offers (主动服务), same namespace.
from dgov.services.bundle_urls import urlpatterns as _bundle_urlpatterns  # noqa: E402

urlpatterns += _bundle_urlpatterns

# Service metrics (服务指标) and supervision of overdue applications (督办), same namespace.
from dgov.services.metrics_urls import urlpatterns as _metrics_urlpatterns  # noqa: E402

urlpatterns += _metrics_urlpatterns

# Results (决定书 download) and 好差评 (rating form, ratings and rectification orders), same namespace.
from dgov.services.result_urls import urlpatterns as _result_urlpatterns  # noqa: E402

urlpatterns += _result_urlpatterns

# Pre-fill side: the official's page of an application's shared data (免提交材料), same namespace.
from dgov.services.prefill_urls import urlpatterns as _prefill_urlpatterns  # noqa: E402

urlpatterns += _prefill_urlpatterns
