"""Pages of results and 好差评: the decision PDF download, the rating form, the workbench list of ratings and orders.

Thin views over :mod:`dgov.services.results` and :mod:`dgov.services.ratings`. Objects outside the
user's scope are a 404 (no IDOR); the result download is audited.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from dgov.services import applications, establishment, ratings, results
from dgov.services.models import Application, RatingRectification, ServiceRating


def closure_context(app: Application, user) -> dict:
    """What the tracking page shows once an application is closed: the result and the rating form or rating."""
    if not app.is_closed:
        return {}
    rating = ServiceRating.objects.filter(application=app).first()
    # Whether the sealed PDF is there, without reading it (applications_of defers the blob).
    has_result = Application.objects.filter(pk=app.pk).exclude(result_pdf=b"").exists()
    return {
        "result_url": reverse("services:result_pdf", args=[app.number]) if has_result else "",
        "licence": app.licence if app.licence_id else None,
        # An enterprise licence of a person's approval (设立登记): the new entity's name and USCC.
        "entity": establishment.entity_of(app),
        "rating": rating,
        "can_rate": rating is None and ratings.can_rate(app, user),
        "scores": ServiceRating.Score.choices,
        "rate_url": reverse("services:rate", args=[app.number]),
    }


@login_required
def result_pdf(request, number: str):
    """The signed decision PDF (决定书) for the applicant / verified holder or the department's officials."""
    found = results.result_for(request.user, number)
    if found is None:
        raise Http404
    app, data = found
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{app.number}.pdf"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_POST
def rate(request, number: str):
    """Rate an own closed application (好差评) from its tracking page."""
    app = applications.applications_of(request.user).filter(number=number).first()
    if app is None:
        raise Http404
    try:
        rating = ratings.rate(
            app,
            actor=request.user,
            score=request.POST.get("score", ""),
            comment=request.POST.get("comment", ""),
            channel="online",
        )
    except ratings.AlreadyRated as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        if rating.is_bad:
            messages.success(request, gettext("感谢您的评价。我们已通知承办部门核实整改，并将反馈整改情况。"))
        else:
            messages.success(request, gettext("感谢您的评价。"))
    return redirect(reverse("services:my_application", args=[number]) + "#rating")


def _official(request):
    """The user when an official or administrator; PermissionDenied otherwise."""
    user = request.user
    if getattr(user, "kind", "") not in ("official", "admin"):
        raise PermissionDenied(gettext("好差评管理仅向工作人员开放。"))
    return user


@login_required
def ratings_list(request):
    """The ratings and rectification orders of my department (supervisors: all they supervise)."""
    user = _official(request)
    status = request.GET.get("status", "")
    orders = ratings.visible_rectifications(user).order_by("status", "due_on", "-id")
    if status in RatingRectification.Status.values:
        orders = orders.filter(status=status)
    rows = [
        {
            "order": order,
            "comment": ratings.mask_comment(order.rating.comment),
            "may_answer": ratings.may_answer(user, order),
            "may_close": ratings.may_close(user, order),
        }
        for order in orders[:200]
    ]
    recent = [
        {"rating": rating, "comment": ratings.mask_comment(rating.comment)}
        for rating in ratings.visible_ratings(user).order_by("-created_at", "-id")[:100]
    ]
    return render(
        request,
        "services/ratings.html",
        {
            "orders": rows,
            "ratings": recent,
            "status": status,
            "statuses": RatingRectification.Status.choices,
            "days": ratings.rectify_days(),
        },
    )


def _order(user, code: str) -> RatingRectification:
    """An order the user may see, else 404."""
    order = ratings.visible_rectifications(user).filter(code=code).first()
    if order is None:
        raise Http404
    return order


@login_required
@require_POST
def rectification_action(request, code: str, action: str):
    """Answer (the department) or close (the supervising office) a rectification order."""
    user = _official(request)
    order = _order(user, code)
    try:
        if action == "answer":
            ratings.answer(order, actor=user, response=request.POST.get("response", ""))
            messages.success(request, gettext("已反馈整改情况。"))
        elif action == "close":
            ratings.close(order, actor=user, note=request.POST.get("note", ""))
            messages.success(request, gettext("整改工单已办结。"))
        else:
            raise Http404
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    return redirect("services:ratings")
