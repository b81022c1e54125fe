"""The JSON API at /api/v1/: one Ninja instance, routers from each app, problem+json errors."""

from ninja import NinjaAPI

from dgov.api import problems
from dgov.api.docs import LocalSwagger
from dgov.api.meta import router as meta_router
from dgov.kernel.api import router as kernel_router

api = NinjaAPI(
    title="dgov API",
    version="1",
    description="数字政府平台接口 — digital government platform API. Errors are RFC 9457 problem+json.",
    urls_namespace="api",
    docs=LocalSwagger(),
)
problems.install(api)

# Before the /licences/ router: none of its paths may swallow /licences/verify/.
api.add_router("/licences/verify/", "dgov.licenses.verify_api.router")
api.add_router("/licences/use", "dgov.licenses.use_api.router")  # 用证; before /licences/{identifier}
api.add_router("/", meta_router)
api.add_router("/kernel/", kernel_router)
api.add_router("/registries/", "dgov.registry.api.router")
api.add_router("/catalog/", "dgov.catalog.api.router")
api.add_router("/exchange/", "dgov.exchange.api.router")
api.add_router("/exchange/subscriptions/", "dgov.exchange.subscriptions_api.router")
api.add_router("/exchange/peers/", "dgov.exchange.federation_api.gateway_router")
api.add_router("/federation/", "dgov.exchange.federation_api.router")
api.add_router("/quality/", "dgov.quality.api.router")
api.add_router("/services/applications", "dgov.services.process_api.router")  # 办件 (docs/services.md)
api.add_router("/services/metrics", "dgov.services.metrics_api.router")  # 服务指标 (docs/services.md)
api.add_router("/services/", "dgov.services.bundle_api.router")  # 一件事, 主动服务 (docs/services.md)
api.add_router("/licences/", "dgov.licenses.api.router")
