"""Template tags of 一件事: the "为您推荐" offers and "我的一件事" cases panels of a user's page (我的办件).

Used by ``services/my_applications.html`` as ``{% load services_bundles %}{% my_offers %}{% my_bundle_cases %}``
so the page's view needs no change; each tag queries only the logged-in user's own rows.
"""

from __future__ import annotations

from django import template

from dgov.services import bundles, offers

register = template.Library()


def _user(context):
    """The request's user (anonymous when there is no request)."""
    request = context.get("request")
    return getattr(request, "user", None)


@register.inclusion_tag("services/_offers.html", takes_context=True)
def my_offers(context) -> dict:
    """The user's proactive offers (为您推荐), newest first."""
    return {"offers": list(offers.offers_for(_user(context))[:20])}


@register.inclusion_tag("services/_bundle_cases.html", takes_context=True)
def my_bundle_cases(context) -> dict:
    """The user's bundle cases (我的一件事), newest first."""
    return {"cases": list(bundles.cases_of(_user(context))[:50])}
