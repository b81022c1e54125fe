"""Template filters naming where shared data comes from (``{% load services_sources %}``)."""

from __future__ import annotations

from django import template

from dgov.services import sources

register = template.Library()


@register.filter
def library_label(registry_code: str) -> str:
    """The base library's name for a registry code (``population.person`` → 人口基础库)."""
    return sources.library_label(str(registry_code or ""))
