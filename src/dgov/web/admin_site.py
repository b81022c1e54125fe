"""Customization of Django's admin site for the platform's administrators."""

from django import forms
from django.contrib import admin
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _


class UnifiedLoginOnlyForm(AuthenticationForm):
    """The admin's own login form, disabled: it would bypass lockout and the second factor.

    It never checks a password; administrators log in through the platform's login page
    (``web:login``), which then lets staff accounts into the admin.
    """

    def clean(self):
        """Refuse every attempt, without looking at the credentials."""
        raise forms.ValidationError(_("请通过平台统一登录页面登录。"), code="unified_login_only")


def customize(site: admin.AdminSite | None = None) -> None:
    """Give the admin site the platform's titles; its login page points to the unified login."""
    site = site or admin.site
    site.site_header = _("dgov 数字政府平台管理")
    site.site_title = _("dgov 管理")
    site.index_title = _("平台管理")
    site.site_url = "/"
    site.login_form = UnifiedLoginOnlyForm
    site.login_template = "web/admin_login.html"
