"""Mutual recognition pages (互认): the public trust list and the workbench list of peers' issuers.

* ``GET /licences/trust-list.json`` (public, no login) — this instance's signed trust list
  (:func:`dgov.licenses.trust.signed_trust_list`), what peers import;
* ``/workbench/licences/trust/`` — every peer's recognized issuers, the list's version, fetch
  time and validity; officials may look (the lists are public documents), provincial data
  administrators and platform administrators may also sync a peer's list at once
  (``…/trust/sync/``, POST; anyone else is refused and the refusal audited).
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from dgov.exchange import federation
from dgov.kernel.services import audit
from dgov.licenses import access, trust
from dgov.web import navigation

LIST_MAX_AGE = 60


def _official(request):
    """The user, when an official or administrator; PermissionDenied for anyone else."""
    if not navigation.officials_only(request.user):
        raise PermissionDenied(gettext("电子证照页面仅向工作人员和系统管理员开放。"))
    return request.user


@require_GET
def trust_list(request):
    """This instance's trust list: a flattened JWS (``application/jose+json``), public and briefly cacheable."""
    body = json.dumps(trust.signed_trust_list(), ensure_ascii=False)
    response = HttpResponse(body, content_type=f"{trust.MEDIA_TYPE}; charset=utf-8")
    patch_cache_control(response, public=True, max_age=LIST_MAX_AGE)
    response["Access-Control-Allow-Origin"] = "*"
    return response


@login_required
def trusted_issuers(request):
    """Peers and the issuers their trust lists make recognized here."""
    user = _official(request)
    context = {
        "peers": trust.peer_overview(),
        "may_sync": access.sees_all(user),
        "own_count": len(trust.own_issuers()),
        "list_path": trust.PATH,
    }
    return render(request, "licenses/trust.html", context)


@login_required
@require_POST
def sync(request):
    """Sync one peer's trust list now (provincial data administrators and administrators)."""
    user = _official(request)
    peer = federation.find_peer(request.POST.get("peer", ""))
    if peer is None:
        raise Http404(gettext("级联对端不存在。"))
    if not access.sees_all(user):
        with transaction.atomic():
            audit.record("licenses.trust.sync", actor=user, target=peer, outcome="denied", detail={"peer": peer.code})
        raise PermissionDenied(gettext("仅省级大数据主管部门和系统管理员可以同步信任列表。"))
    report = trust.sync_peer(peer, actor=user)
    (messages.success if report.ok else messages.error)(request, f"{peer.name}：{report.message}")
    return redirect("licenses:trust")
