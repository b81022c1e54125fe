"""The interactive API docs page, with Swagger UI served from our own static files (no CDN)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from ninja.openapi.docs import DocsBase


class LocalSwagger(DocsBase):
    """Swagger UI from the npm package ``swagger-ui-dist`` under /static/vendor/swagger-ui/."""

    template = "web/api_docs.html"
    default_settings: dict[str, Any] = {
        "layout": "BaseLayout",
        "deepLinking": True,
        "persistAuthorization": False,
        # Swagger UI otherwise asks validator.swagger.io to judge the schema: an outside call.
        "validatorUrl": None,
        "tryItOutEnabled": False,
    }

    def __init__(self, settings: dict[str, Any] | None = None):
        self.settings = {**self.default_settings, **(settings or {})}

    def render_page(self, request: HttpRequest, api, **kwargs: Any) -> HttpResponse:
        """Render the docs page pointing Swagger UI at this API's OpenAPI document."""
        swagger_settings = {**self.settings, "url": self.get_openapi_url(api, kwargs)}
        context = {
            "api": api,
            "swagger_settings": swagger_settings,
        }
        return render(request, self.template, context)
