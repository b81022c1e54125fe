"""Top-level URL map: portal and workbench pages, admin, API, health and metrics."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from dgov.api.main import api

urlpatterns = [
    path("", include("dgov.kernel.urls")),  # /healthz /readyz /metrics
    path("api/v1/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("workbench/registries/", include("dgov.registry.urls")),
    path("workbench/catalog/", include("dgov.catalog.urls")),
    path("workbench/exchange/", include("dgov.exchange.urls")),
    path("workbench/quality/", include("dgov.quality.urls")),
    path("workbench/linkage/", include("dgov.linkage.urls")),
    path("workbench/licences/", include("dgov.licenses.urls")),
    path("workbench/api-clients/", include("dgov.identity.client_urls")),
    path("licences/", include("dgov.licenses.public_urls")),  # 证照核验: verify, QR, issuers, status lists
    path("", include("dgov.services.urls")),  # /services/… 办事服务, /workbench/services/… 事项目录
    path("", include("dgov.oidc.urls")),  # /.well-known/openid-configuration, /oidc/…, client pages
    path("account/licences/", include("dgov.licenses.wallet_urls")),  # 我的证照: wallet, consents, use log
    path("account/", include("dgov.registry.account_urls")),  # /account/reads/ 谁查了我的数据
    path("", include("dgov.identity.urls")),  # /login/verify/ /login/enrol/ /account/…
    path("", include("dgov.web.urls")),
]

# Error pages in the base layout, or problem+json for requests under /api/.
handler400 = "dgov.web.views.bad_request"
handler403 = "dgov.web.views.permission_denied"
handler404 = "dgov.web.views.page_not_found"
handler500 = "dgov.web.views.server_error"

if settings.DEBUG:  # pragma: no cover - media served by the front proxy in production
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
