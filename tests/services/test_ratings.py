"""好差评: rating a closed application once, the rectification a bad rating opens, answer / close, the overdue job."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dgov.kernel.models import AuditRecord, Notification, Organization
from dgov.kernel.services import calendar
from dgov.services import applications, ratings
from dgov.services.models import Application, ApplicationEvent, RatingRectification, ServiceRating

from .process_helpers import GOOD, make_world

pytestmark = pytest.mark.django_db

API = "/api/v1/services/applications"


@pytest.fixture
def world(django_user_model):
    """make_world (市场监管 under its parent ``top``) plus an official of the provincial 政务服务管理办公室."""
    world = make_world(django_user_model, prefix="rate")
    zwfw = Organization.objects.create(
        name="山东省政务服务管理办公室",
        code="370000-rate-zwfw",
        uscc="11370000MB1234567D",
        level=Organization.Level.PROVINCE,
        division=world["province"],
        kind="ZWFW",
    )
    world["users"]["zwfw"] = django_user_model.objects.create_user(
        username="rate-zwfw", password="x", kind="official", department=zwfw
    )
    return world


def _submit(world, user="citizen"):
    applicant = world["users"][user]
    return applications.submit(world["item"], applicant=applicant, data=GOOD, actor=applicant)


def _closed(world, user="citizen"):
    """An application closed by 不予受理 (the shortest way to a closed application)."""
    app = _submit(world, user)
    task = app.tasks.get(status__in=applications.LIVE)
    applications.complete_task(task, actor=world["users"]["a"], decision="reject", data={"opinion": "材料不全"})
    app.refresh_from_db()
    return app


def _bad(world, **kw):
    app = _closed(world)
    rating = ratings.rate(app, actor=world["users"]["citizen"], score=1, comment=kw.get("comment", "等了很久"))
    return app, rating.rectification


def test_rating_is_once_only_after_closure_and_only_by_the_applicant(world):
    users = world["users"]
    open_app = _submit(world)
    with pytest.raises(ValidationError) as info:
        ratings.rate(open_app, actor=users["citizen"], score=5)
    assert "application" in info.value.message_dict

    app = _closed(world)
    for stranger in ("citizen2", "a", "other"):
        with pytest.raises(PermissionDenied):
            ratings.rate(app, actor=users[stranger], score=5)
    for bad, field in (({"score": 0}, "score"), ({"score": "x"}, "score"), ({"score": 6}, "score")):
        with pytest.raises(ValidationError) as info:
            ratings.rate(app, actor=users["citizen"], **bad)
        assert field in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        ratings.rate(app, actor=users["citizen"], score=5, comment="长" * 501, channel="fax")
    assert set(info.value.message_dict) == {"comment", "channel"}
    assert not ServiceRating.objects.exists()

    rating = ratings.rate(app, actor=users["citizen"], score=4, comment="很满意")
    assert (rating.score, rating.department, rating.rated_by) == (4, world["orgs"]["scjg"], users["citizen"])
    assert not rating.is_bad and not RatingRectification.objects.exists()
    event = app.events.get(kind=ApplicationEvent.Kind.RATED)
    assert event.detail == {"score": 4, "channel": "online"}  # no comment in the event log
    assert AuditRecord.objects.filter(action="services.rating.create", target_id=str(rating.pk)).exists()
    with pytest.raises(ratings.AlreadyRated):
        ratings.rate(app, actor=users["citizen"], score=1)
    assert ServiceRating.objects.count() == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT comment FROM services_servicerating WHERE id = %s", [rating.pk])
        assert "很满意" not in cursor.fetchone()[0]  # sealed at rest


def test_a_bad_rating_opens_a_rectification_due_in_15_working_days(world):
    app, order = _bad(world)
    today = datetime.date.today()
    assert order.department == world["orgs"]["scjg"] and order.status == RatingRectification.Status.OPEN
    assert order.opened_on == today and order.due_on == calendar.add_working_days(today, 15)
    assert order.code.startswith(f"CP{today:%Y%m%d}")
    told = set(Notification.objects.filter(template="services.rating.bad").values_list("user__username", flat=True))
    assert told == {"rate-a", "rate-b"}  # the department's officials
    assert AuditRecord.objects.filter(action="services.rectification.open", target_id=str(order.pk)).exists()


def test_the_rectification_period_is_a_setting(world, settings):
    settings.SERVICES_RATING_RECTIFY_DAYS = 3
    _app, order = _bad(world)
    assert order.due_on == calendar.add_working_days(datetime.date.today(), 3)


def test_answer_by_the_department_close_by_the_supervisors(world):
    users = world["users"]
    _app, order = _bad(world)
    with pytest.raises(ValidationError):
        ratings.close(order, actor=users["boss"], note="尚未反馈")  # answered first
    for stranger in ("other", "boss", "citizen", "zwfw"):
        with pytest.raises(PermissionDenied):
            ratings.answer(order, actor=users[stranger], response="已整改")
    with pytest.raises(ValidationError) as info:
        ratings.answer(order, actor=users["a"], response="  ")
    assert "response" in info.value.message_dict
    order = ratings.answer(order, actor=users["a"], response="已电话回访并优化窗口流程")
    assert order.status == RatingRectification.Status.ANSWERED and order.answered_by == "rate-a" and order.answered_at
    with pytest.raises(ValidationError):
        ratings.answer(order, actor=users["b"], response="再次反馈")
    for stranger in ("a", "other", "citizen"):
        with pytest.raises(PermissionDenied):
            ratings.close(order, actor=users[stranger], note="")
    order = ratings.close(order, actor=users["boss"], note="回访满意")  # the department's parent organization
    assert order.status == RatingRectification.Status.CLOSED and order.closed_at
    assert AuditRecord.objects.filter(action="services.rectification.close", target_id=str(order.pk)).exists()

    # The province's 政务服务管理办公室 closes too.
    _app2, second = _bad(world)
    ratings.answer(second, actor=users["b"], response="已整改")
    assert ratings.close(second, actor=users["zwfw"]).status == RatingRectification.Status.CLOSED


def test_the_overdue_job_marks_once_and_tells_the_parent(world):
    users = world["users"]
    _app, order = _bad(world)
    _app2, answered = _bad(world)
    ratings.answer(answered, actor=users["a"], response="已整改")
    assert ratings.rectification_overdue_job() == 0  # nothing due yet
    assert ratings.rectification_overdue_sweep(today=order.due_on) == 0  # due today is not overdue
    later = order.due_on + datetime.timedelta(days=1)
    assert ratings.rectification_overdue_sweep(today=later) == 1
    order.refresh_from_db()
    answered.refresh_from_db()
    assert order.overdue and not answered.overdue
    told = set(Notification.objects.filter(template="services.rating.overdue").values_list("user__username", flat=True))
    assert told == {"rate-a", "rate-b", "rate-boss"}  # the department and its parent organization
    assert ratings.rectification_overdue_sweep(today=later) == 0
    assert AuditRecord.objects.filter(action="services.rectification.overdue").count() == 1


def test_visibility_of_ratings_and_orders(world):
    users = world["users"]
    _app, order = _bad(world)
    for who, sees in (("a", True), ("boss", True), ("zwfw", True), ("other", False), ("citizen", False)):
        assert ratings.visible_rectifications(users[who]).filter(pk=order.pk).exists() is sees, who
        assert ratings.visible_ratings(users[who]).filter(pk=order.rating_id).exists() is sees, who


def test_comments_are_masked_for_officials():
    text = "电话13812345678，身份证370102199001011234，<b>态度差</b>"
    masked = ratings.mask_comment(text)
    assert "13812345678" not in masked and "138****5678" in masked
    assert "370102199001011234" not in masked and "370102********1234" in masked
    assert "<b>态度差</b>" in masked  # markup is escaped by the page, not here


# --- pages ------------------------------------------------------------------------------------------------------


def test_rating_through_the_tracking_page(world, client):
    users = world["users"]
    open_app = _submit(world)
    client.force_login(users["citizen"])
    assert 'data-testid="rating-form"' not in client.get(f"/services/my/{open_app.number}/").content.decode()
    app = _closed(world)
    page = client.get(f"/services/my/{app.number}/").content.decode()
    assert 'data-testid="rating-form"' in page and f"/services/my/{app.number}/rating/" in page
    comment = "<script>alert(1)</script> 请回电13812345678"
    response = client.post(f"/services/my/{app.number}/rating/", {"score": "2", "comment": comment}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="rating-given"' in page and "<script>alert(1)</script>" not in page
    rating = ServiceRating.objects.get(application=app)
    assert rating.score == 2 and rating.rectification.status == RatingRectification.Status.OPEN
    again = client.post(f"/services/my/{app.number}/rating/", {"score": "5"}, follow=True)
    assert "只能评价一次" in again.content.decode() and ServiceRating.objects.get(application=app).score == 2

    client.force_login(users["citizen2"])
    assert client.post(f"/services/my/{app.number}/rating/", {"score": "5"}).status_code == 404


def test_workbench_ratings_page_answer_and_close(world, client):
    users = world["users"]
    app, order = _bad(world, comment="<script>x</script> 回电13812345678")
    url = "/workbench/services/ratings/"
    client.force_login(users["citizen"])
    assert client.get(url).status_code == 403

    client.force_login(users["a"])
    page = client.get(url).content.decode()
    assert order.code in page and app.number in page and 'data-testid="answer-form"' in page
    assert "13812345678" not in page and "138****5678" in page and "<script>x</script>" not in page
    answer = f"{url}{order.code}/answer/"
    client.post(answer, {"response": "已整改"})
    order.refresh_from_db()
    assert order.status == RatingRectification.Status.ANSWERED
    client.post(f"{url}{order.code}/close/", {"note": "自己办结"})  # not the department's to close
    order.refresh_from_db()
    assert order.status == RatingRectification.Status.ANSWERED

    client.force_login(users["other"])  # another department: the order is not there
    assert order.code not in client.get(url).content.decode()
    assert client.post(f"{url}{order.code}/close/", {"note": "x"}).status_code == 404

    client.force_login(users["boss"])
    with CaptureQueriesContext(connection) as one:
        page = client.get(url).content.decode()
    assert 'data-testid="close-form"' in page
    _bad(world)  # more orders and ratings: the same queries (no per-row look-ups)
    with CaptureQueriesContext(connection) as two:
        assert client.get(url).content.decode().count('data-testid="order-') == 2
    assert len(two) == len(one)
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Service ratings and rectifications" in english and "within 15 working days" in english
    client.post(f"{url}{order.code}/close/", {"note": "回访满意"})
    order.refresh_from_db()
    assert order.status == RatingRectification.Status.CLOSED


def test_rating_api(world, client):
    users = world["users"]
    open_app = _submit(world)
    app = _closed(world)
    client.force_login(users["citizen"])
    url = f"{API}/{app.number}/rating"
    early = client.post(f"{API}/{open_app.number}/rating", {"score": 5}, content_type="application/json")
    assert early.status_code == 400 and early["Content-Type"].startswith("application/problem+json")
    bad = client.post(url, {"score": 9}, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["loc"] == ["score"]
    made = client.post(url, {"score": 1, "comment": "太慢"}, content_type="application/json")
    assert made.status_code == 201, made.content
    body = made.json()
    order = RatingRectification.objects.get()
    assert body["score"] == 1 and body["rectification"] == order.code
    assert body["rectification_due"] == order.due_on.isoformat()
    again = client.post(url, {"score": 5}, content_type="application/json")
    assert again.status_code == 409 and again["Content-Type"].startswith("application/problem+json")

    client.force_login(users["citizen2"])
    assert client.post(url, {"score": 5}, content_type="application/json").status_code == 404
    client.force_login(users["a"])  # the department's official is not the applicant
    assert client.post(url, {"score": 5}, content_type="application/json").status_code == 404
    assert Application.objects.get(pk=app.pk).rating.score == 1
