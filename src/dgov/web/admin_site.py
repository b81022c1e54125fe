"""Customization of Django's admin site for the platform's administrators."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _


def customize(site: admin.AdminSite | None = None) -> None:
    """Give the admin site the platform's titles (access stays limited to active staff accounts)."""
    site = site or admin.site
    site.site_header = _("dgov 数字政府平台管理")
    site.site_title = _("dgov 管理")
    site.index_title = _("平台管理")
    site.site_url = "/"
