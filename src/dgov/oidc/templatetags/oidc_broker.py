"""Template tags of identity brokering: the account console's "已关联的登录方式" card."""

from django import template

from dgov.oidc.services import broker

register = template.Library()


@register.inclusion_tag("oidc/_linked_logins.html", takes_context=True)
def linked_logins_card(context):
    """The person's linked upstream logins with unlink / re-link buttons (nothing for other kinds of account)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    language = getattr(request, "LANGUAGE_CODE", "") or ""
    rows = []
    if user is not None and user.is_authenticated and getattr(user, "kind", "") == "person":
        rows = [{"link": link, "name": link.provider.display_name(language)} for link in broker.linked_logins(user)]
    return {
        "rows": rows,
        "show": bool(rows) or bool(user is not None and getattr(user, "kind", "") == "person"),
        "has_password": bool(user is not None and user.is_authenticated and user.has_usable_password()),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("oidc/_upstream_logins.html")
def upstream_login_buttons(next_url=""):
    """The login page's "使用…登录" buttons, one per enabled upstream provider (none: nothing shown)."""
    return {"options": broker.login_options(str(next_url or ""))}


@register.inclusion_tag("oidc/_reauth_upstream.html", takes_context=True)
def reauth_upstream_buttons(context, next_url=""):
    """On the re-authentication page of an account without a password: log in again through a linked provider."""
    request = context.get("request")
    user = getattr(request, "user", None)
    options = []
    if user is not None and user.is_authenticated:
        options = broker.relogin_options(user, str(next_url or ""))
    return {"options": options}
