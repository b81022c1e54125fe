"""Demo history of applications (演示办件历史): about six months of 一网通办 in the demo province.

``dgov demo`` calls :func:`generate` once, while there are no applications yet; ``dgov services
history --count N`` adds more. Every application is planned first — item, place, holder, channel,
delivery, a timeline of decisions in working hours, 补正, visits, rating — and the plan is cut at
*now*: the decisions planned after now have not happened, so recent applications are still open
and a few stalled ones are overdue, exactly like an office's real backlog.

Correctness first, then speed:

* **A sample runs the real path.** For every distinct path through the process (approved, denied,
  rejected, corrected then approved, and each open stop on the way) the first planned application
  goes through :func:`dgov.services.applications.submit`, ``complete_task`` and
  ``submit_correction`` — engine state, tasks, events, audit records, notifications and the result
  delivery of the closing transaction included — and its timestamps are then moved back to its
  planned timeline (application, tasks, events, application number).
* **The rest are inserted in bulk as copies of their path's sample.** The process state does not
  depend on the application (form data never enters the engine), so a copy carries the sample's
  compact workflow state, version and task rows (same engine task ids, so an open copy resumes like
  the sample), and the sample's workflow events, each at its own planned time. What a copy does not
  have is what only the live path makes: per-application audit records (one ``services.demo.history``
  record covers the run), notifications, and the result document / e-licence of a closed one.
* Visits (``visit``, 跑动一次: window submission, window pickup of the result), the SLA clock's
  ``warned`` / ``escalated`` events and flags (as the sweep would have set them), and ratings (through
  :func:`dgov.services.ratings.rate`, so a bad one opens its rectification order; dates moved back)
  are added to samples and copies alike.

Holders are persons and enterprises of the demo libraries (``population.person``,
``legal_entity.enterprise``); online applicants are demo person accounts verified against the
population library (``demo_p0001`` …, no password: they cannot log in), the demo ``citizen`` (a few
applications, so its 我的办件 has a history) and the demo ``enterprise`` account; window applications
of walk-in holders without an account have no applicant, only the holder index.
"""

from __future__ import annotations

import datetime
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from dgov.kernel.models import Division, Organization
from dgov.kernel.services import audit, calendar
from dgov.kernel.services.divisions import scope_prefix
from dgov.licenses.models import HolderKind
from dgov.licenses.services import holder_index
from dgov.services import applications, processes
from dgov.services.form_schema import fields_of, validate_form
from dgov.services.models import (
    Application,
    ApplicationEvent,
    ApplicationTask,
    RatingRectification,
    ServiceItem,
    ServiceRating,
)

__all__ = ["DEFAULT_COUNT", "DEFAULT_MONTHS", "HistoryReport", "generate"]

ACTOR = "system:demo"
SLA_ACTOR = "system:worker"
DEFAULT_COUNT = 600
DEFAULT_MONTHS = 6
ACCOUNTS = 40  # demo person accounts that apply online
SCAN = 3000  # person records looked at to pick holders
BATCH = 500
CORRECTION = "correction"  # the applicant's 补正 step in a script
SCRIPTS = {
    "approved": ("accept", "pass", "approve"),
    "denied": ("accept", "pass", "deny"),
    "rejected": ("reject",),
    "corrected": ("correct", CORRECTION, "accept", "pass", "approve"),
}
# How often each ending is planned (the rest of the picture comes from cutting plans at now).
ENDINGS = (("approved", 0.84), ("denied", 0.04), ("rejected", 0.04), ("corrected", 0.08))
# Events of the process itself, copied from a path's sample; the others are added per application.
WORKFLOW_EVENTS = frozenset(
    {
        ApplicationEvent.Kind.SUBMITTED,
        ApplicationEvent.Kind.ACCEPTED,
        ApplicationEvent.Kind.REJECTED,
        ApplicationEvent.Kind.CORRECTION_REQUESTED,
        ApplicationEvent.Kind.CORRECTION_SUBMITTED,
        ApplicationEvent.Kind.TASK_CLAIMED,
        ApplicationEvent.Kind.TASK_COMPLETED,
        ApplicationEvent.Kind.APPROVED,
        ApplicationEvent.Kind.DENIED,
        ApplicationEvent.Kind.COMPLETED,
    }
)
OPINIONS = {
    "reject": ("申请事项不属于本部门职权范围。", "申请人不符合受理条件。", "申请材料与办理事项不符。"),
    "correct": ("请补充提交清晰的身份证明材料。", "申请表信息填写不完整，请补正。", "请补充住所使用证明。"),
    "deny": ("经审查，申请不符合法定条件。", "现场核查不符合要求。"),
}
SCORES = ((5, 0.70), (4, 0.18), (3, 0.06), (2, 0.04), (1, 0.02))
COMMENTS = {
    5: ("办事很方便，一次都没跑。", "工作人员态度很好，效率高。", ""),
    4: ("整体满意。", ""),
    3: ("等待时间有点长。", ""),
    2: ("材料要求没有一次说清楚。", "办理时间比承诺的长。"),
    1: ("来回跑了好几趟，体验很差。", "电话一直打不通。"),
}


@dataclass
class HistoryReport:
    """What :func:`generate` made and how long it took."""

    applications: int = 0
    real: int = 0
    bulk: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    visits: int = 0
    ratings: int = 0
    bad_ratings: int = 0
    corrections: int = 0
    overdue: int = 0  # open and past the promised due date
    late: int = 0  # closed after the promised due date (escalated on the way)
    accounts: int = 0
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase: holders, plans, samples, bulk, ratings
    skipped: str = ""

    def to_text(self) -> str:
        """A one-line Chinese summary for ``dgov demo``."""
        if self.skipped:
            return f"办件历史：{self.skipped}"
        statuses = "、".join(f"{Application.Status(k).label} {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"办件历史：生成 {self.applications} 件（真实流程 {self.real} 件，批量 {self.bulk} 件；{statuses}），"
            f"补正 {self.corrections} 件，超期在办 {self.overdue} 件，超期办结 {self.late} 件，"
            f"现场跑动 {self.visits} 次，"
            f"评价 {self.ratings} 条（差评 {self.bad_ratings} 条），演示账号 {self.accounts} 个，"
            f"用时 {self.seconds:.1f} 秒"
        )


@dataclass
class _Holder:
    """An applicant subject: kind, holder index, name, ID number or USCC, and the account if any."""

    kind: str
    index: str
    name: str
    number: str
    account: object | None = None


@dataclass
class _Plan:
    """One planned application: what, where, who, how, and when each step happens."""

    item: ServiceItem
    division: Division
    department: Organization
    official: object
    holder: _Holder
    channel: str
    delivery: str
    ending: str
    times: list[datetime.datetime]  # submission, then one per script step
    data: dict
    score: int | None = None
    comment: str = ""
    done: int = 0  # script steps that happened before now
    paused_days: int = 0

    @property
    def script(self) -> tuple[str, ...]:
        """Every step of the planned ending."""
        return SCRIPTS[self.ending]

    @property
    def path(self) -> tuple[str, ...]:
        """The steps taken so far: the key of the path's template."""
        return self.script[: self.done]

    @property
    def submitted(self) -> datetime.datetime:
        """When the application was submitted."""
        return self.times[0]

    def step_time(self, index: int) -> datetime.datetime:
        """When script step ``index`` (0-based) happened."""
        return self.times[index + 1]


@dataclass
class _Template:
    """A path through the process captured from its sample: final state, tasks and per-step events."""

    definition_id: int
    state: dict
    version: int
    status: str
    # (step index or -1 for submission, kind, detail, role) per workflow event.
    events: list[tuple[int, str, dict, str]]
    # per task: spec fields, the step that created it, the step that finished it (None while open).
    tasks: list[dict]


# --- Helpers -------------------------------------------------------------------------------------------------


def _tz() -> datetime.tzinfo:
    """The platform's time zone."""
    return timezone.get_default_timezone()


def _at(day: datetime.date, rng: random.Random, start: float = 9.0, end: float = 17.5) -> datetime.datetime:
    """A random local time of the day between ``start`` and ``end`` o'clock."""
    minutes = int(rng.uniform(start, end) * 60)
    return datetime.datetime.combine(day, datetime.time(minutes // 60, minutes % 60), tzinfo=_tz())


def _after(moment: datetime.datetime, day: datetime.date, rng: random.Random) -> datetime.datetime:
    """A working-hours time on ``day``, not before ``moment`` (a few minutes after it on the same day)."""
    local = moment.astimezone(_tz())
    if day > local.date():
        return _at(day, rng)
    start = local.hour + local.minute / 60 + 0.1
    if start >= 17.5:
        return local + datetime.timedelta(minutes=rng.randint(3, 30))
    return _at(day, rng, start=max(start, 9.0), end=17.5)


def _choice(rng: random.Random, weighted) -> object:
    """A value from ``((value, weight), …)``."""
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights=weights)[0]


def _registry_rows(code: str, limit: int, wanted) -> list[dict]:
    """Decrypted values of up to ``limit`` live records of a demo library that satisfy ``wanted``."""
    from dgov.registry import services as registry_services
    from dgov.registry.models import Record

    try:
        registry = registry_services.get_registry(code)
    except registry_services.RegistryNotFound:
        return []
    found = []
    for record in Record.objects.filter(registry=registry, deleted_at__isnull=True).order_by("id")[:SCAN]:
        values = registry_services.record_values_now(record)
        if wanted(values):
            found.append(values)
        if len(found) >= limit:
            break
    return found


def _holders(rng: random.Random, count: int) -> tuple[list[_Holder], list[_Holder], int]:
    """Person holders (the first of them with verified demo accounts) and enterprise holders; accounts made."""
    from dgov.identity import realname

    User = get_user_model()
    people = _registry_rows(
        "population.person",
        max(60, count // 4),
        lambda v: (
            v.get("status") == "normal"
            and v.get("id_number")
            and v.get("name")
            and str(v.get("birth_date", "9999")) <= "2004-01-01"
        ),
    )
    companies = _registry_rows(
        "legal_entity.enterprise", max(20, count // 20), lambda v: v.get("status") == "active" and v.get("uscc")
    )
    persons = [
        _Holder(HolderKind.PERSON, holder_index(HolderKind.PERSON, p["id_number"]), p["name"], p["id_number"])
        for p in people
    ]
    enterprises = [
        _Holder(HolderKind.ENTERPRISE, holder_index(HolderKind.ENTERPRISE, e["uscc"]), e["name"], e["uscc"])
        for e in companies
        if e.get("name")
    ]
    bound = {
        user.id_number_digest: user for user in User.objects.filter(kind=User.Kind.PERSON).exclude(id_number_digest="")
    }
    made = 0
    for n, holder in enumerate(persons[:ACCOUNTS], start=1):
        account = bound.get(holder.index)
        if account is None:
            username = f"demo_p{n:04d}"
            account = User.objects.filter(username=username).first() or User.objects.create_user(
                username=username, password=None, kind=User.Kind.PERSON
            )
            try:
                realname.verify_person(account, holder.name, holder.number, actor=ACTOR)
            except realname.RealNameError:  # refused (e.g. bound elsewhere): stays a walk-in holder
                continue
            made += 1
        holder.account = account
    citizen = User.objects.filter(username="citizen", real_name_level__gte=2).exclude(id_number_digest="").first()
    if citizen is not None:
        persons.insert(
            0,
            _Holder(HolderKind.PERSON, citizen.id_number_digest, citizen.display_name, citizen.id_number, citizen),
        )
    agent = User.objects.filter(username="enterprise").exclude(enterprise_uscc="").first()
    if agent is not None:
        index = holder_index(HolderKind.ENTERPRISE, agent.enterprise_uscc)
        own = next((holder for holder in enterprises if holder.index == index), None)
        if own is None:
            names = _registry_rows("legal_entity.enterprise", 1, lambda v: v.get("uscc") == agent.enterprise_uscc)
            name = names[0].get("name", "") if names else ""
            own = _Holder(HolderKind.ENTERPRISE, index, name or agent.enterprise_uscc, agent.enterprise_uscc)
            enterprises.insert(0, own)
        own.account = agent
    return persons, enterprises, made


def _places(province_code: str, rng: random.Random) -> list[Division]:
    """Counties of up to five cities of the province (the capital always), two per city."""
    prefix = scope_prefix(province_code)
    cities = list(
        Division.objects.filter(
            code__startswith=prefix, level=Division.Level.CITY, is_current=True, placeholder=False
        ).order_by("code")
    )
    chosen = cities[:1] + rng.sample(cities[1:], min(4, max(0, len(cities) - 1)))
    counties = []
    for city in chosen:
        below = list(
            Division.objects.filter(
                code__startswith=city.code[:4], level=Division.Level.COUNTY, is_current=True, placeholder=False
            ).order_by("code")[:2]
        )
        counties.extend(below)
    return counties


def _value(name: str, prop: dict, holder: _Holder, other: _Holder, rng: random.Random, day: datetime.date):
    """A plausible value of one form field (``other`` is another person: a spouse, a child's other parent)."""
    kind = prop.get("type", "string")
    if "enum" in prop:
        return rng.choice(prop["enum"])
    if kind == "boolean":
        return rng.random() < 0.3
    if kind in ("integer", "number"):
        low = int(prop.get("minimum", 1) or 1)
        high = int(prop.get("maximum", low + 500))
        return rng.randint(low, max(low, min(high, low + 500)))
    if prop.get("format") == "date":
        return (day + datetime.timedelta(days=rng.randint(-20, 20))).isoformat()
    person = other if "spouse" in name else holder
    if "id_number" in name:
        return person.number if person.kind == HolderKind.PERSON else other.number
    if "child" in name and "name" in name:
        return (holder.name[:1] + other.name[1:])[:20]
    if "name" in name or "representative" in name:
        return person.name[:20]
    if "address" in name:
        return "山东省济南市历下区泉城路1号"
    if "scope" in name:
        return "食品销售；日用百货销售"
    if "household" in name:
        return f"{rng.randint(10**8, 10**9 - 1)}"
    return str(prop.get("title", name))[: int(prop.get("maxLength", 20) or 20)]


def _form(item: ServiceItem, holder: _Holder, other: _Holder, rng: random.Random, day: datetime.date) -> dict | None:
    """Form data valid against the item's schema; optional fields that do not validate are left out; None if invalid."""
    schema = item.form_schema or {}
    data = {name: _value(name, prop, holder, other, rng, day) for name, prop, _required in fields_of(schema)}
    _cleaned, errors = validate_form(schema, data)
    for name in errors:
        data.pop(name, None)
    cleaned, errors = validate_form(schema, data)
    return None if errors else cleaned


# --- Planning ------------------------------------------------------------------------------------------------


def _timeline(plan: _Plan, rng: random.Random) -> None:
    """Step times in working hours: accepted in 0–1 working days, decided on time mostly, sometimes late or stalled.

    ``total`` is the department's working days from submission to the last step; a 补正 adds the
    applicant's working days on top (and moves the due dates by them, as the SLA clock does).
    """
    item = plan.item
    promised, legal = item.promised_limit_days, item.legal_limit_days
    roll = rng.random()
    if plan.ending == "rejected" or (promised <= 1 and roll < 0.45):
        total = 0 if roll < 0.7 else 1  # 即办 / rejected at once
    elif roll < 0.86:
        total = rng.randint(min(1, promised), promised)
    elif roll < 0.97:
        total = rng.randint(promised + 1, max(promised + 1, min(legal, promised + 6)))
    else:
        total = promised + rng.randint(25, 60)  # stalled: still open (and overdue) when recent enough
    script = plan.script
    official_steps = [index for index, step in enumerate(script) if step != CORRECTION]
    gaps: dict[int, int] = {}
    remaining = total
    for position, index in enumerate(official_steps):
        if position == len(official_steps) - 1:
            gap = remaining
        elif position == 0:
            gap = 0 if remaining == 0 or rng.random() < 0.6 else 1
        else:
            gap = rng.randint(0, remaining // 2)
        gaps[index] = min(gap, remaining)
        remaining -= gaps[index]
    moment = plan.submitted
    current = moment.astimezone(_tz()).date()
    times = [moment]
    for index, step in enumerate(script):
        if step == CORRECTION:
            plan.paused_days = rng.randint(1, 5)
            current = calendar.add_working_days(current, plan.paused_days)
            moment = max(_at(current, rng, 8.0, 21.0), moment + datetime.timedelta(minutes=20))
        else:
            current = calendar.add_working_days(current, gaps[index])
            moment = _after(moment, current, rng)
        current = moment.astimezone(_tz()).date()
        times.append(moment)
    plan.times = times


def _plans(
    count: int,
    months: int,
    *,
    rng: random.Random,
    now: datetime.datetime,
    items: list[ServiceItem],
    places: list[Division],
    province: Division,
    persons: list[_Holder],
    enterprises: list[_Holder],
) -> list[_Plan]:
    """The planned applications, oldest first, with their steps cut at now."""
    today = now.astimezone(_tz()).date()
    first = today - datetime.timedelta(days=30 * months)
    departments: dict[tuple[int, str], tuple[Organization, object] | None] = {}
    weights = [3 if item.online_depth == 4 else 2 for item in items]
    citizen = persons[0] if persons and persons[0].account is not None else None
    cities: dict[str, Division | None] = {}
    # The demo citizen applies now and then (explicitly below), not as often as 1 in ~40 applicants.
    citizen_account = citizen.account if citizen is not None else None
    with_account = {
        True: [h for h in persons if h.account is not None and h.account.pk != getattr(citizen_account, "pk", None)],
        False: [holder for holder in enterprises if holder.account is not None],
    }
    plans: list[_Plan] = []
    attempts = 0
    while len(plans) < count and attempts < count * 5:
        attempts += 1
        item = rng.choices(items, weights=weights)[0]
        county = rng.choice(places)
        levels = item.levels or ["province"]
        if "county" in levels:
            division = county
        elif "city" in levels:
            division = cities.setdefault(county.code[:4], Division.objects.filter(code=county.code[:4] + "00").first())
        else:
            division = province
        if division is None:
            continue
        key = (item.pk, division.code)
        if key not in departments:
            departments[key] = _department_and_official(item, division)
        found = departments[key]
        if found is None:
            continue
        department, official = found
        kinds = item.holder_kinds or ["person"]
        pool = persons if "person" in kinds and persons else enterprises
        if not pool:
            continue
        online_share = {4: 0.85, 3: 0.6}.get(item.online_depth, 0.0)
        if pool is enterprises:
            online_share *= 0.5  # the demo has one enterprise account; other enterprises come to a window
        online_pool = with_account[pool is persons]
        channel = "online" if online_pool and rng.random() < online_share else "window"
        if channel == "online":
            holder = citizen if citizen is not None and pool is persons and rng.random() < 0.02 else None
            holder = holder or rng.choice(online_pool)
            electronic = item.online_depth == 4 and rng.random() < 0.85
            delivery = "electronic" if electronic else rng.choice(("post", "window"))
        else:
            holder = rng.choice(pool)
            delivery = "window" if rng.random() < 0.7 else rng.choice(("post", "electronic"))
        day = first + datetime.timedelta(days=rng.randint(0, max(0, (today - first).days)))
        if channel == "window":
            day = calendar.add_working_days(day, 0)
            submitted = _at(day, rng)
        else:
            submitted = _at(day, rng, 7.5, 22.5)
        if submitted >= now:
            continue
        data = _form(item, holder, rng.choice(persons) if persons else holder, rng, day)
        if data is None:
            continue
        plan = _Plan(
            item=item,
            division=division,
            department=department,
            official=official,
            holder=holder,
            channel=channel,
            delivery=delivery,
            ending=_choice(rng, ENDINGS),
            times=[submitted],
            data=data,
        )
        _timeline(plan, rng)
        plan.done = sum(1 for moment in plan.times[1:] if moment <= now)
        if plan.path == SCRIPTS[plan.ending] and holder.account is not None and rng.random() < 0.5:
            plan.score = _choice(rng, SCORES)
            plan.comment = rng.choice(COMMENTS[plan.score])
        plans.append(plan)
    plans.sort(key=lambda p: p.submitted)
    return plans


def _department_and_official(item: ServiceItem, division: Division) -> tuple[Organization, object] | None:
    """The competent department at the division (as submit finds it) and one of its officials."""
    try:
        department = applications._competent_department(item, division)
    except ValidationError:
        return None
    official = (
        get_user_model().objects.filter(department=department, kind="official", is_active=True).order_by("pk").first()
    )
    return (department, official) if official is not None else None


# --- The real path (samples) ---------------------------------------------------------------------------------


def _decide(app: Application, step: str, official) -> None:
    """Complete the open official task with this step's decision."""
    task = (
        app.tasks.filter(status__in=applications.LIVE)
        .exclude(lane=processes.APPLICANT_LANE)
        .order_by("created_at", "pk")
        .first()
    )
    decision = step if step in applications.decisions_for(task) else applications.decisions_for(task)[0]
    opinion = "" if decision in ("accept", "approve", "pass") else OPINIONS[decision][0]
    applications.complete_task(task, actor=official, decision=decision, data={"opinion": opinion})


def _run_sample(plan: _Plan) -> tuple[Application, _Template, dict]:
    """Run a plan through the real services; returns the application, its path's template and the step map."""
    holder = plan.holder
    app = applications.submit(
        plan.item,
        applicant=holder.account,
        data=plan.data,
        channel=plan.channel,
        actor=_submitter(plan),
        division=plan.division,
        holder=None if holder.account is not None else (holder.kind, holder.index, holder.name, holder.number),
        window_official=plan.official if plan.channel == "window" else None,
        delivery=plan.delivery,
    )
    step_of_event = {event.pk: -1 for event in app.events.all()}
    created = {task.pk: -1 for task in app.tasks.all()}
    finished: dict[int, int] = {}
    for index, step in enumerate(plan.path):
        before_events = set(app.events.values_list("pk", flat=True))
        open_before = set(app.tasks.filter(status__in=applications.LIVE).values_list("pk", flat=True))
        before_tasks = set(app.tasks.values_list("pk", flat=True))
        if step == CORRECTION:
            applications.submit_correction(app, actor=holder.account, data=plan.data)
        else:
            _decide(app, step, plan.official)
        for pk in set(app.events.values_list("pk", flat=True)) - before_events:
            step_of_event[pk] = index
        for pk in set(app.tasks.values_list("pk", flat=True)) - before_tasks:
            created[pk] = index
        for pk in open_before - set(app.tasks.filter(status__in=applications.LIVE).values_list("pk", flat=True)):
            finished[pk] = index
    app.refresh_from_db()
    tasks = list(app.tasks.order_by("pk"))
    template = _Template(
        definition_id=app.definition_id,
        state=app.workflow_state,
        version=app.version,
        status=app.status,
        events=[
            (step_of_event[event.pk], event.kind, event.detail, _role(event.actor_label, plan))
            for event in app.events.order_by("pk")
            if event.kind in WORKFLOW_EVENTS
        ],
        tasks=[
            {
                "spiff_id": task.spiff_id,
                "spec_name": task.spec_name,
                "name": task.name,
                "lane": task.lane,
                "status": task.status,
                "decision": task.decision,
                "data": task.data,
                "created": created.get(task.pk, -1),
                "finished": finished.get(task.pk),
                "applicant": task.lane == processes.APPLICANT_LANE,
            }
            for task in tasks
        ],
    )
    return app, template, {"events": step_of_event, "created": created, "finished": finished}


def _submitter(plan: _Plan):
    """Who submits: the window official at a window (一窗受理), else the applicant online."""
    if plan.channel == Application.Channel.WINDOW or plan.holder.account is None:
        return plan.official
    return plan.holder.account


def _role(label: str, plan: _Plan) -> str:
    """Who wrote an event: the applicant or the official (for the copies' actor labels)."""
    account = plan.holder.account
    if account is not None and label == getattr(account, "username", None):
        return "applicant"
    return "official"


def _retime_sample(app: Application, plan: _Plan, steps: dict) -> None:
    """Move a sample's history back to its planned times (application, number, tasks, events)."""
    times = plan.times

    def when(index: int) -> datetime.datetime:
        """The time of a step (-1: the submission)."""
        return times[index + 1] if index >= 0 else times[0]

    for pk, index in steps["events"].items():
        ApplicationEvent.objects.filter(pk=pk).update(at=when(index))
    # The real resubmission came at once; the plan's applicant took paused_days working days.
    for event in app.events.filter(kind=ApplicationEvent.Kind.CORRECTION_SUBMITTED):
        event.detail = {**event.detail, "paused_days": plan.paused_days}
        event.save(update_fields=["detail"])
    for pk, index in steps["created"].items():
        ApplicationTask.objects.filter(pk=pk).update(created_at=when(index))
    for pk, index in steps["finished"].items():
        ApplicationTask.objects.filter(pk=pk, completed_at__isnull=False).update(completed_at=when(index))
    Application.objects.filter(pk=app.pk).update(
        number=_number(plan.submitted, app.number[8:]), **_clock_fields(plan, app.status)
    )


# --- Copies --------------------------------------------------------------------------------------------------


def _number(submitted: datetime.datetime, digits: str) -> str:
    """An application number as submit makes it: the submission day and ten digits."""
    return submitted.astimezone(_tz()).strftime("%Y%m%d") + digits


def _clock_fields(plan: _Plan, status: str) -> dict:
    """Timestamps and the SLA clock of a plan whose path ended in ``status``."""
    day = plan.submitted.astimezone(_tz()).date()
    path = plan.path
    accepted = next((plan.step_time(i) for i, step in enumerate(path) if step == "accept"), None)
    closed = plan.step_time(len(path) - 1) if status in Application.CLOSED else None
    in_correction = status == Application.Status.CORRECTION
    paused = plan.paused_days if CORRECTION in path else 0
    return {
        "submitted_at": plan.submitted,
        "accepted_at": accepted,
        "completed_at": closed,
        "promised_due": calendar.add_working_days(day, plan.item.promised_limit_days + paused),
        "legal_due": calendar.add_working_days(day, plan.item.legal_limit_days + paused),
        "paused_days": paused,
        "paused_since": plan.step_time(len(path) - 1) if in_correction else None,
    }


def _copy(plan: _Plan, template: _Template, rng: random.Random, numbers: set[str]) -> tuple:
    """The rows of one copy: the application (unsaved), its tasks and its events as (object, time) pairs."""
    holder = plan.holder
    while True:
        number = _number(plan.submitted, "".join(rng.choice("0123456789") for _ in range(10)))
        if number not in numbers:
            numbers.add(number)
            break
    fields = _clock_fields(plan, template.status)
    app = Application(
        number=number,
        item=plan.item,
        applicant=holder.account,
        holder_name=holder.name,
        holder_number=holder.number,
        holder_kind=holder.kind,
        holder_id=holder.index,
        division=plan.division,
        department=plan.department,
        definition_id=template.definition_id,
        form_data=json.dumps(plan.data, ensure_ascii=False, sort_keys=True),
        status=template.status,
        channel=plan.channel,
        workflow_state=template.state,
        version=template.version,
        window_official=plan.official if plan.channel == "window" else None,
        delivery=plan.delivery,
        **fields,
    )

    def when(index: int) -> datetime.datetime:
        """The time of a step (-1: the submission)."""
        return plan.times[index + 1] if index >= 0 else plan.times[0]

    tasks = []
    for spec in template.tasks:
        done = spec["finished"] is not None
        task = ApplicationTask(
            spiff_id=spec["spiff_id"],
            spec_name=spec["spec_name"],
            name=spec["name"],
            lane=spec["lane"],
            department=None if spec["applicant"] else plan.department,
            assignee=holder.account if spec["applicant"] else None,
            status=spec["status"],
            claimed_by=plan.official if done and not spec["applicant"] else None,
            completed_by=(holder.account if spec["applicant"] else plan.official) if done else None,
            decision=spec["decision"],
            data=spec["data"],
            completed_at=when(spec["finished"]) if done else None,
        )
        tasks.append((task, when(spec["created"])))
    events = []
    for index, kind, detail, role in template.events:
        actor = holder.account if role == "applicant" and holder.account is not None else plan.official
        if kind == ApplicationEvent.Kind.SUBMITTED:
            actor = _submitter(plan)
        elif kind == ApplicationEvent.Kind.CORRECTION_SUBMITTED:
            detail = {**detail, "paused_days": plan.paused_days}
        label = str(getattr(actor, "username", "") or "")[:150]
        events.append(
            (ApplicationEvent(kind=kind, actor_label=label, channel=plan.channel, detail=detail), when(index))
        )
    return app, tasks, events


# --- Visits, the SLA clock, ratings --------------------------------------------------------------------------


def _extras(plan: _Plan, app_status: str, now: datetime.datetime, rng: random.Random) -> tuple[list, dict]:
    """Visit and SLA events of an application, and the flags the sweep would have set."""
    events = []
    label = str(getattr(plan.official, "username", "") or "")[:150]
    if plan.channel == "window":
        events.append(("visit", plan.submitted, {"reason": "submit"}, label, "window"))
        if CORRECTION in plan.path:
            index = plan.path.index(CORRECTION)
            events.append(("visit", plan.step_time(index), {"reason": "correction"}, label, "window"))
    closed = app_status in Application.CLOSED
    if closed and plan.delivery == "window" and app_status != Application.Status.REJECTED:
        pickup_day = calendar.add_working_days(plan.step_time(len(plan.path) - 1), rng.randint(1, 4))
        pickup = _at(pickup_day, rng)
        if pickup <= now:
            events.append(("visit", pickup, {"reason": "pickup"}, label, "window"))
    fields = _clock_fields(plan, app_status)
    flags = {"warned": False, "overdue": False}
    if fields["paused_since"] is not None:
        return events, flags
    # The hourly SLA sweep: warns from two working days before the due date, escalates the day after it.
    due = fields["promised_due"]
    end = fields["completed_at"] or now
    tz = _tz()
    warn_at = max(
        datetime.datetime.combine(calendar.add_working_days(due, -2), datetime.time(1, 0), tz),
        plan.submitted + datetime.timedelta(hours=1),
    )
    escalate_at = datetime.datetime.combine(due + datetime.timedelta(days=1), datetime.time(1, 0), tz)
    if escalate_at < end and escalate_at <= now:
        if warn_at < escalate_at:
            events.append(("warned", warn_at, {"due": due.isoformat()}, SLA_ACTOR, plan.channel))
        events.append(("escalated", escalate_at, {"due": due.isoformat()}, SLA_ACTOR, plan.channel))
        flags["overdue"] = flags["warned"] = True
    elif warn_at < end and warn_at <= now:
        events.append(("warned", warn_at, {"due": due.isoformat()}, SLA_ACTOR, plan.channel))
        flags["warned"] = True
    return events, flags


def _rate(app: Application, plan: _Plan) -> ServiceRating | None:
    """Rate through the ratings service (a bad rating opens its order), then date it back to the plan."""
    from dgov.services import ratings

    rated_at = plan.step_time(len(plan.path) - 1) + datetime.timedelta(hours=3)
    rated_at = min(rated_at, timezone.now())
    try:
        rating = ratings.rate(app, actor=plan.holder.account, score=plan.score, comment=plan.comment)
    except (ValidationError, PermissionDenied, ratings.AlreadyRated):
        return None
    ServiceRating.objects.filter(pk=rating.pk).update(created_at=rated_at)
    ApplicationEvent.objects.filter(application=app, kind=ApplicationEvent.Kind.RATED).update(at=rated_at)
    day = rated_at.astimezone(_tz()).date()
    RatingRectification.objects.filter(rating=rating).update(
        opened_on=day, due_on=calendar.add_working_days(day, ratings.rectify_days())
    )
    return rating


# --- Generating ----------------------------------------------------------------------------------------------


def _bulk_insert(rows: list[tuple], model, time_field: str) -> None:
    """Insert (object, time) pairs and set their auto_now_add time (which an insert would overwrite)."""
    objects = [obj for obj, _moment in rows]
    model.objects.bulk_create(objects, batch_size=BATCH)
    for obj, moment in rows:
        setattr(obj, time_field, moment)
    model.objects.bulk_update(objects, [time_field], batch_size=BATCH)


def generate(
    *,
    province_code: str | None = None,
    count: int = DEFAULT_COUNT,
    months: int = DEFAULT_MONTHS,
    seed: int = 0,
    now: datetime.datetime | None = None,
) -> HistoryReport:
    """Generate about ``count`` historical applications over the past ``months`` months, all or nothing.

    See the module docstring. ValidationError for a count or months below 1; a province without
    items, places or holders gives a report that says what was missing and writes nothing.
    """
    started = time.perf_counter()
    report = HistoryReport()
    if count < 1 or months < 1:
        raise ValidationError({"count": ["count 与 months 至少为 1。"]})
    province_code = province_code or settings.DEMO_PROVINCE_CODE
    now = now or timezone.now()
    rng = random.Random(f"services-history:{seed}")
    items = list(
        ServiceItem.objects.filter(status=ServiceItem.Status.ACTIVE, process_key="review").order_by("basic_code")
    )
    province = Division.objects.filter(code=province_code).first()
    places = _places(province_code, rng) if province is not None else []
    if not items or not places:
        report.skipped = "没有可用的事项或区划，未生成。"
        return report

    def lap(name: str, since: list[float] = [started]) -> None:  # noqa: B006 - a lap timer's state
        moment = time.perf_counter()
        report.phases[name] = round(moment - since[0], 2)
        since[0] = moment

    with transaction.atomic():
        persons, enterprises, report.accounts = _holders(rng, count)
        lap("holders")
        if not persons and not enterprises:
            report.skipped = "演示信息库中没有可作申请人的人员或企业，未生成。"
            transaction.set_rollback(True)
            return report
        processes.definition_for("review", actor=ACTOR)
        plans = _plans(
            count,
            months,
            rng=rng,
            now=now,
            items=items,
            places=places,
            province=province,
            persons=persons,
            enterprises=enterprises,
        )
        lap("plans")
        made = _write(plans, rng=rng, now=now, report=report, lap=lap)
        audit.record(
            "services.demo.history",
            actor=ACTOR,
            detail={
                "applications": report.applications,
                "real": report.real,
                "bulk": report.bulk,
                "months": months,
                "seed": seed,
            },
        )
        for app, plan in made:
            if plan.score is not None and app.status in Application.CLOSED:
                rating = _rate(app, plan)
                if rating is not None:
                    report.ratings += 1
                    report.bad_ratings += rating.is_bad
        lap("ratings")
    report.seconds = time.perf_counter() - started
    return report


def _write(plans: list[_Plan], *, rng: random.Random, now: datetime.datetime, report: HistoryReport, lap) -> list:
    """Samples through the real path, copies in bulk, then visits and the SLA clock; (application, plan) pairs."""
    templates: dict[tuple[str, ...], _Template] = {}
    made: list[tuple[Application, _Plan]] = []
    copies: list[_Plan] = []
    for plan in plans:
        if plan.path in templates:
            copies.append(plan)
            continue
        sampleable = (plan.holder.account is not None or CORRECTION not in plan.path) and (
            plan.item.produces_licence_type_id is None or "approve" not in plan.path
        )
        if not sampleable:
            copies.append(plan)
            continue
        app, template, steps = _run_sample(plan)
        _retime_sample(app, plan, steps)
        templates[plan.path] = template
        made.append((app, plan))
        report.real += 1
    lap("samples")
    numbers = set(Application.objects.values_list("number", flat=True))
    rows = []
    for plan in copies:
        template = templates.get(plan.path)
        if template is not None:  # else no sample could take this path (补正 of walk-ins only): left out
            rows.append((plan, *_copy(plan, template, rng, numbers)))
    _bulk_insert([(app, plan.submitted) for plan, app, _tasks, _events in rows], Application, "submitted_at")
    task_rows, event_rows = [], []
    for plan, app, tasks, events in rows:
        for task, moment in tasks:
            task.application = app
            task_rows.append((task, moment))
        for event, moment in events:
            event.application = app
            event_rows.append((event, moment))
        made.append((app, plan))
        report.bulk += 1
    _bulk_insert(task_rows, ApplicationTask, "created_at")
    _bulk_insert(event_rows, ApplicationEvent, "at")
    extra_rows, flagged = [], []
    for app, plan in made:
        extras, flags = _extras(plan, app.status, now, rng)
        for kind, moment, detail, label, channel in extras:
            event = ApplicationEvent(application=app, kind=kind, actor_label=label, channel=channel, detail=detail)
            extra_rows.append((event, moment))
            report.visits += kind == ApplicationEvent.Kind.VISIT
        if flags["warned"]:
            flagged.append((app.pk, flags))
    _bulk_insert(extra_rows, ApplicationEvent, "at")
    for name in ("warned", "overdue"):
        ids = [pk for pk, flags in flagged if flags[name]]
        for start in range(0, len(ids), BATCH):
            Application.objects.filter(pk__in=ids[start : start + BATCH]).update(**{name: True})
    statuses: Counter = Counter()
    for app, plan in made:
        statuses[app.status] += 1
        report.corrections += "correct" in plan.path
    overdue = {pk for pk, flags in flagged if flags["overdue"]}
    report.overdue = sum(1 for app, _plan in made if app.pk in overdue and app.status not in Application.CLOSED)
    report.late = sum(1 for app, _plan in made if app.pk in overdue and app.status in Application.CLOSED)
    report.applications = len(made)
    report.statuses = dict(statuses)
    lap("bulk")
    return made
