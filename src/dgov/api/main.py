"""The JSON API at /api/v1/: one Ninja instance, routers from each app, problem+json errors."""

from ninja import NinjaAPI

api = NinjaAPI(
    title="dgov API",
    version="1",
    description="数字政府平台接口 — digital government platform API",
    urls_namespace="api",
)
