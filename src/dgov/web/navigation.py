"""Navigation registry: apps register their pages here and the base layout renders the menus.

An app calls :func:`register` from its ``AppConfig.ready()`` (or at import of its urls module)::

    from dgov.web import navigation
    navigation.register("portal", "services", _("办事服务"), "services:index", order=20)
    navigation.register("workbench", "applications", _("办件"), "services:inbox",
                        permission=navigation.officials_only, order=20)

Entries whose URL name does not resolve are left out of the menus, so a menu only ever links to
pages that exist. The portal's keys are shared with the home page, whose capability cards become
links once their key is registered: ``home`` (order 0), ``services`` 办事服务 (20), ``licences``
电子证照 (30), ``hotline`` 12345 热线 (40), ``opendata`` 数据开放 (50), ``divisions`` 行政区划 (90).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, reverse

logger = logging.getLogger(__name__)

SECTIONS = ("portal", "workbench")
"""The portal menu (public) and the officials' workbench menu."""

Permission = str | Callable[[Any], bool] | None


@dataclass(frozen=True)
class NavEntry:
    """One registered menu entry."""

    section: str
    key: str
    label: Any  # usually a lazy translation, evaluated at render time in the active language
    url_name: str
    permission: Permission = None
    order: int = 100

    def visible_to(self, user) -> bool:
        """True when ``user`` may see this entry (no permission means everyone)."""
        if self.permission is None:
            return True
        if callable(self.permission):
            return bool(self.permission(user))
        return bool(user is not None and user.has_perm(self.permission))


@dataclass(frozen=True)
class NavLink:
    """A menu entry resolved for one request: label, URL and whether it is the current page."""

    key: str
    label: str
    url: str
    active: bool


_registry: dict[tuple[str, str], NavEntry] = {}
_lock = threading.Lock()


def register(
    section: str,
    key: str,
    label: Any,
    url_name: str,
    permission: Permission = None,
    order: int = 100,
) -> NavEntry:
    """Add or replace (by section + key) a menu entry; ``permission`` is a perm name or a callable."""
    if section not in SECTIONS:
        raise ValueError(f"unknown navigation section {section!r}; expected one of {SECTIONS}")
    entry = NavEntry(section, key, label, url_name, permission, order)
    with _lock:
        _registry[(section, key)] = entry
    return entry


def unregister(section: str, key: str) -> None:
    """Remove a menu entry if it is registered."""
    with _lock:
        _registry.pop((section, key), None)


def registered(section: str) -> list[NavEntry]:
    """All entries of a section in menu order, regardless of who is looking."""
    with _lock:
        entries = [e for (s, _k), e in _registry.items() if s == section]
    return sorted(entries, key=lambda e: (e.order, e.key))


def is_registered(section: str, key: str) -> bool:
    """True when an entry with this key is registered in the section."""
    with _lock:
        return (section, key) in _registry


def links(section: str, *, user=None, current_path: str = "") -> list[NavLink]:
    """The entries of ``section`` that ``user`` may see and that resolve to a URL, ready to render."""
    resolved = []
    for entry in registered(section):
        if not entry.visible_to(user):
            continue
        try:
            url = reverse(entry.url_name)
        except NoReverseMatch:
            # An app registered a page whose URLs are not mounted: skip it rather than break every page.
            logger.warning(
                "navigation entry %s/%s: URL name %r does not resolve", section, entry.key, entry.url_name
            )
            continue
        resolved.append((entry, url))
    # The current page is the entry with the longest URL prefixing the path ("/" only matches itself).
    matching = [
        url for _e, url in resolved if current_path == url or (url != "/" and current_path.startswith(url))
    ]
    current = max(matching, key=len, default=None)
    return [NavLink(entry.key, str(entry.label), url, url == current) for entry, url in resolved]


def officials_only(user) -> bool:
    """Permission callable: officials and administrators (the workbench audience)."""
    return bool(
        user is not None and user.is_authenticated and getattr(user, "kind", None) in ("official", "admin")
    )
