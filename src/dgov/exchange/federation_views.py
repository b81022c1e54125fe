"""Officials' federation pages (跨级目录): peers' catalogues and the department's requests filed with peers.

Thin views: parse, authorize (officials only; the services check the department again), call
``dgov.exchange.federation_exchange``, render. The requests peers file here appear in the
provider's ordinary approval inbox.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext

from dgov.exchange import federation_exchange as exchange
from dgov.exchange.models import Peer, ShareRequest
from dgov.exchange.views import _file_request, _official


@login_required
def catalogue(request):
    """Peers' published resources (search by name, code or provider; filter by peer) and my department's requests."""
    _user, department = _official(request)
    query = (request.GET.get("q") or "").strip()[:100]
    peers = list(Peer.objects.filter(status=Peer.Status.ACTIVE).order_by("code"))
    chosen = next((p for p in peers if p.code == request.GET.get("peer")), None)
    return render(
        request,
        "exchange/federation.html",
        {
            "department": department,
            "rows": exchange.remote_resources(query=query, peer=chosen)[:200],
            "requests": exchange.remote_requests_of(department)[:200],
            "peers": peers,
            "chosen": chosen,
            "q": query,
        },
    )


@login_required
def new_request(request, peer: str, key: str):
    """The request form for a peer's resource: items (full or verify-only), purpose, legal basis, end of period."""
    user, _department = _official(request)
    remote = exchange.find_remote_resource(peer, key.replace("-", "/", 1))
    if remote is None:
        raise Http404(gettext("信息资源不存在或未发布。"))
    labels = {
        ShareRequest.Status.GRANTED: gettext("申请已获对端授权。"),
        ShareRequest.Status.SUBMITTED: gettext("申请已提交对端提供部门审批，审批结果将自动同步。"),
        ShareRequest.Status.REFUSED: gettext("对端未通过该申请。"),
    }
    filed, errors = _file_request(
        request,
        lambda **fields: exchange.request_remote(remote, actor=user, **fields),
        labels=labels,
        done="exchange:federation",
    )
    if filed:
        return filed
    return render(
        request,
        "exchange/federation_new.html",
        {"remote": remote, "errors": errors, "not_shared": "none"},
    )
