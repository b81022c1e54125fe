"""Officials' registry pages: who may open them, what they show (masked), edits, corrections, schemas."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from dgov.kernel.models import AuditRecord, Division, Organization
from dgov.kernel.validators import make_resident_id, make_uscc
from dgov.registry import services
from dgov.registry.models import AccessLog, CorrectionRequest, RecordChange

pytestmark = pytest.mark.django_db

PASSWORD = "Pages-test-passw0rd"
ID_LIXIA = make_resident_id("370102", datetime.date(1988, 5, 17), 21)
ID_SHIZHONG = make_resident_id("370103", datetime.date(1992, 3, 9), 35)

FIELDS = [
    {
        "name": "id_number",
        "label": "居民身份证号码",
        "label_en": "ID number",
        "type": "resident_id",
        "sensitivity": "personal",
        "authority": "GA",
    },
    {
        "name": "name",
        "label": "姓名",
        "label_en": "Name",
        "type": "string",
        "sensitivity": "personal",
        "authority": "GA",
    },
    {"name": "sex", "label": "性别", "label_en": "Sex", "type": "enum", "choices": ["男", "女"], "authority": "GA"},
    {"name": "division", "label": "户籍地", "type": "division_code", "authority": "GA", "required": True},
    {"name": "address", "label": "住址", "type": "string", "sensitivity": "personal", "authority": "GA"},
    {
        "name": "marital_status",
        "label": "婚姻状况",
        "type": "enum",
        "choices": ["未婚", "已婚", "离婚", "丧偶"],
        "authority": "MZ",
    },
]


def _org(code, name, kind, level, division, serial):
    return Organization.objects.create(
        name=name,
        code=code,
        kind=kind,
        level=level,
        division=division,
        uscc=make_uscc("1", "1", division.code, serial=serial),
    )


@pytest.fixture
def orgs(province):
    """Provincial GA (owner), MZ, DSJ and 文旅 (no rights); the GA branches of two districts of 济南."""
    city = Division.objects.get(code="370100")
    lixia = Division.objects.create(code="370102", name="历下区", full_name="山东省济南市历下区", level=3, parent=city)
    shizhong = Division.objects.create(
        code="370103", name="市中区", full_name="山东省济南市市中区", level=3, parent=city
    )
    return {
        "ga": _org("370000-GA", "山东省公安厅", "GA", 1, province, 1),
        "mz": _org("370000-MZ", "山东省民政厅", "MZ", 1, province, 2),
        "dsj": _org("370000-DSJ", "山东省大数据局", "DSJ", 1, province, 3),
        "wl": _org("370000-WHLY", "山东省文化和旅游厅", "WHLY", 1, province, 4),
        "ga_lixia": _org("370102-GA", "济南市公安局历下区分局", "GA", 3, lixia, 5),
        "ga_shizhong": _org("370103-GA", "济南市公安局市中区分局", "GA", 3, shizhong, 6),
    }


@pytest.fixture
def users(orgs, django_user_model):
    """One official per department (keyed like ``orgs``), an administrator and a citizen."""
    made = {
        key: django_user_model.objects.create_user(
            username=f"p-{key}", password=PASSWORD, kind="official", display_name=f"{org.name}干部", department=org
        )
        for key, org in orgs.items()
    }
    made["admin"] = django_user_model.objects.create_user(username="p-admin", password=PASSWORD, kind="admin")
    made["citizen"] = django_user_model.objects.create_user(username="p-citizen", password=PASSWORD, kind="person")
    return made


@pytest.fixture
def registry(orgs):
    """A person registry owned by the provincial GA, scoped by 户籍地."""
    return services.create_registry(
        code="pages.person",
        name="人口信息",
        owner=orgs["ga"],
        library_code="population",
        identifier_field="id_number",
        scope_field="division",
        fields=FIELDS,
        actor="system:test",
    )


@pytest.fixture
def people(registry, users):
    """A person of 历下区 and one of 市中区, each created by the district's GA branch."""
    lixia = services.create_record(
        registry,
        {
            "id_number": ID_LIXIA,
            "name": "张三丰",
            "sex": "男",
            "division": "370102",
            "address": "山东省济南市历下区泉城路1号",
        },
        actor=users["ga_lixia"],
    )
    services.update_record(lixia, {"marital_status": "未婚"}, actor=users["mz"])
    shizhong = services.create_record(
        registry,
        {"id_number": ID_SHIZHONG, "name": "李四海", "sex": "女", "division": "370103"},
        actor=users["ga_shizhong"],
    )
    return {"lixia": lixia, "shizhong": shizhong}


def record_url(person, name="registry:record"):
    return reverse(name, kwargs={"code": person.registry.code, "uid": person.uid})


def fresh(record):
    record.refresh_from_db()
    return record


def assert_no_personal_values(html: str) -> None:
    for raw in (ID_LIXIA, ID_SHIZHONG, "张三丰", "李四海", "泉城路1号"):
        assert raw not in html, f"unmasked personal value {raw!r} in the page"


# --- Who may open the pages ---------------------------------------------------------------------------


def all_urls(people):
    person = people["lixia"]
    return [
        reverse("registry:index"),
        reverse("registry:browse", kwargs={"code": "pages.person"}),
        record_url(person),
        record_url(person, "registry:correct") + "?field=marital_status",
        reverse("registry:corrections"),
        reverse("registry:schema", kwargs={"code": "pages.person"}),
    ]


def test_anonymous_users_are_sent_to_login(client, people):
    for url in all_urls(people):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/?next=/workbench/registries/")


def test_citizens_are_refused(client, people, users):
    client.force_login(users["citizen"])
    for url in all_urls(people):
        assert client.get(url).status_code == 403, url


def test_department_without_read_rights_is_refused(client, people, users):
    client.force_login(users["wl"])
    response = client.get(reverse("registry:index"))
    assert response.status_code == 200
    assert "人口信息" not in response.content.decode()
    for url in all_urls(people)[1:4] + all_urls(people)[5:]:
        assert client.get(url).status_code == 403, url
    assert not AccessLog.objects.exists()


def test_registry_list_shows_counts_in_scope_owner_and_version(client, people, users):
    client.force_login(users["ga"])
    response = client.get(reverse("registry:index"))
    assert response.status_code == 200
    rows = {row["registry"].code: row for row in response.context["rows"]}
    assert rows["pages.person"]["count"] == 2
    assert rows["pages.person"]["version"] == 1
    html = response.content.decode()
    assert "山东省公安厅" in html and "v1" in html
    client.force_login(users["ga_lixia"])
    rows = {row["registry"].code: row for row in client.get(reverse("registry:index")).context["rows"]}
    assert rows["pages.person"]["count"] == 1  # only its district's record
    assert rows["pages.person"]["manage"] is False


def test_workbench_menu_and_home_card_link_the_registry_pages(client, users):
    client.force_login(users["ga"])
    response = client.get(reverse("web:workbench"))
    keys = [link.key for link in response.context["nav_workbench"]]
    assert "registries" in keys and "corrections" in keys
    html = response.content.decode()
    assert 'data-testid="workbench-apps"' in html
    assert f'href="{reverse("registry:corrections")}"' in html
    page = client.get(reverse("registry:index"))
    active = [link.key for link in page.context["nav_workbench"] if link.active]
    assert active == ["registries"]


# --- Browse and search ---------------------------------------------------------------------------------


def test_browse_lists_records_masked(client, people, users):
    client.force_login(users["ga"])
    response = client.get(reverse("registry:browse", kwargs={"code": "pages.person"}))
    assert response.status_code == 200
    html = response.content.decode()
    assert_no_personal_values(html)
    assert ID_LIXIA[:6] + "********" + ID_LIXIA[-4:] in html
    assert "张**" in html
    assert record_url(people["lixia"]) in html
    assert response.context["total"] == 2


def test_browse_is_limited_to_the_district_of_a_county_department(client, people, users):
    client.force_login(users["ga_shizhong"])
    response = client.get(reverse("registry:browse", kwargs={"code": "pages.person"}))
    assert [row["record"].pk for row in response.context["rows"]] == [people["shizhong"].pk]
    outside = client.get(reverse("registry:browse", kwargs={"code": "pages.person"}), {"division": "370102"})
    assert outside.status_code == 400
    assert "不在本部门的管辖范围内" in outside.content.decode()


def test_free_text_and_filters_return_an_htmx_fragment(client, people, users):
    client.force_login(users["ga"])
    url = reverse("registry:browse", kwargs={"code": "pages.person"})
    response = client.get(url, {"f_sex": "女"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'data-testid="registry-results"' in html
    assert [row["record"].pk for row in response.context["rows"]] == [people["shizhong"].pk]
    assert "HX-Request" in response["Vary"]
    none = client.get(url, {"q": "没有这个值"}, headers={"HX-Request": "true"})
    assert 'data-testid="registry-empty"' in none.content.decode()
    bad = client.get(url, {"f_sex": "未知"})
    assert bad.status_code == 400


def test_exact_lookup_by_id_number_finds_the_record_without_echoing_it(client, people, users):
    client.force_login(users["ga"])
    url = reverse("registry:browse", kwargs={"code": "pages.person"})
    response = client.post(url, {"lookup_field": "id_number", "lookup_value": ID_LIXIA.lower()})
    assert response.status_code == 200
    assert [row["record"].pk for row in response.context["rows"]] == [people["lixia"].pk]
    assert_no_personal_values(response.content.decode())
    # A county department does not find a person of another district.
    client.force_login(users["ga_shizhong"])
    response = client.post(url, {"lookup_field": "id_number", "lookup_value": ID_LIXIA}, headers={"HX-Request": "true"})
    assert response.context["rows"] == []
    assert "没有找到该标识对应的记录" in response.content.decode()


def test_pagination_links_use_htmx(client, registry, users):
    for seq in range(1, 24):
        services.create_record(
            registry,
            {
                "id_number": make_resident_id("370102", datetime.date(2000, 1, 1), seq),
                "name": "王五",
                "division": "370102",
            },
            actor=users["ga_lixia"],
        )
    client.force_login(users["ga"])
    url = reverse("registry:browse", kwargs={"code": "pages.person"})
    first = client.get(url)
    assert first.context["pages"] == 2 and len(first.context["rows"]) == 20
    assert 'hx-get="?page=2"' in first.content.decode()
    second = client.get(url, {"page": 2}, headers={"HX-Request": "true"})
    assert len(second.context["rows"]) == 3
    assert 'rel="prev"' in second.content.decode()


# --- Record page ---------------------------------------------------------------------------------------


def test_record_page_shows_masked_values_sources_authorities_and_logs_the_read(client, people, users):
    client.force_login(users["ga"])
    response = client.get(record_url(people["lixia"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert_no_personal_values(html)
    assert "山东省济南市历下区****" in html
    rows = {row["field"].name: row for row in response.context["rows"]}
    assert rows["id_number"]["value"] == ID_LIXIA[:6] + "********" + ID_LIXIA[-4:]
    assert rows["marital_status"]["authority"] == "山东省民政厅（MZ）"
    assert rows["sex"]["source"]["source"] == "济南市公安局历下区分局"
    assert rows["sex"]["writable"] and not rows["marital_status"]["writable"]
    log = AccessLog.objects.get()
    assert (log.reader_org, log.purpose, log.reader) == (users["ga"].department, "workbench", "p-ga")


def test_record_of_another_county_is_refused(client, people, users):
    client.force_login(users["ga_shizhong"])
    assert client.get(record_url(people["lixia"])).status_code == 403
    response = client.post(record_url(people["lixia"], "registry:edit"), {"v_sex": "女", "expected_version": 1})
    assert response.status_code == 403
    assert AuditRecord.objects.filter(action="registry.record.read", outcome="denied").exists()
    assert not AccessLog.objects.exists()


def test_data_administrators_read_but_do_not_edit(client, people, users):
    client.force_login(users["dsj"])
    response = client.get(record_url(people["lixia"]))
    assert response.status_code == 200
    assert response.context["edit_form"] is None
    assert 'href="' + record_url(people["lixia"], "registry:correct") + '?field=sex"' in response.content.decode()


def test_editing_an_authoritative_field_updates_the_record_and_history(client, people, users):
    person = people["lixia"]
    client.force_login(users["ga_lixia"])
    page = client.get(record_url(person))
    assert set(page.context["edit_form"].defs) == {"id_number", "name", "sex", "division", "address"}
    assert 'name="v_marital_status"' not in page.content.decode()
    response = client.post(
        record_url(person, "registry:edit"),
        {
            "v_sex": "女",
            "v_name": "",
            "v_division": "370102",
            "v_id_number": "",
            "v_address": "",
            "reason": "户籍信息核对",
            "expected_version": person.version,
        },
    )
    assert response.status_code == 302
    values = services.record_values_now(fresh(person))
    assert values["sex"] == "女" and values["name"] == "张三丰"  # an empty personal input keeps the value
    change = RecordChange.objects.filter(record=person).latest("id")
    assert change.changes == {"sex": ["男", "女"]} and change.source == users["ga_lixia"].department
    html = client.get(record_url(person)).content.decode()
    assert "户籍信息核对" in html
    assert '<span class="old">男</span> → <span class="new">女</span>' in html


def test_editing_a_personal_field_shows_it_masked_in_history(client, people, users):
    person = people["lixia"]
    client.force_login(users["ga_lixia"])
    client.post(
        record_url(person, "registry:edit"),
        {"v_name": "张三峰", "v_sex": "男", "v_division": "370102", "expected_version": person.version},
    )
    assert services.record_values_now(fresh(person))["name"] == "张三峰"
    html = client.get(record_url(person)).content.decode()
    assert "张三峰" not in html and "张**" in html
    assert_no_personal_values(html)


def test_a_crafted_post_of_a_non_authoritative_field_is_refused(client, people, users):
    person = people["lixia"]
    client.force_login(users["ga_lixia"])
    response = client.post(
        record_url(person, "registry:edit"),
        {"v_marital_status": "已婚", "v_sex": "女", "v_division": "370102", "expected_version": person.version},
    )
    assert response.status_code == 403
    assert "婚姻状况" in response.content.decode()
    values = services.record_values_now(fresh(person))
    assert values["marital_status"] == "未婚" and values["sex"] == "男"
    assert AuditRecord.objects.filter(action="registry.record.update", outcome="denied").exists()


def test_invalid_values_and_stale_versions_are_reported_on_the_form(client, people, users):
    person = people["lixia"]
    client.force_login(users["ga_lixia"])
    response = client.post(
        record_url(person, "registry:edit"), {"v_division": "12345", "v_sex": "男", "expected_version": person.version}
    )
    assert response.status_code == 400
    assert "户籍地" in response.content.decode() and 'class="field-error"' in response.content.decode()
    services.update_record(person, {"sex": "女"}, actor=users["ga_lixia"])
    stale = client.post(
        record_url(person, "registry:edit"), {"v_sex": "男", "v_division": "370102", "expected_version": 1}
    )
    assert stale.status_code == 409
    assert "记录已被他人修改" in stale.content.decode()
    assert services.record_values_now(fresh(person))["sex"] == "女"


def test_record_as_of_a_past_date(client, people, users):
    person = people["lixia"]
    services.update_record(person, {"sex": "女"}, actor=users["ga_lixia"])
    now = timezone.now()
    type(person).objects.filter(pk=person.pk).update(created_at=now - datetime.timedelta(days=10))
    RecordChange.objects.filter(record=person).update(at=now - datetime.timedelta(days=2))
    client.force_login(users["ga"])
    day = timezone.localdate() - datetime.timedelta(days=5)
    response = client.get(record_url(person), {"as_of": day.isoformat()}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'data-testid="as-of-notice"' in html
    rows = {row["field"].name: row for row in response.context["rows"]}
    assert rows["sex"]["value"] == "男"
    assert rows["sex"]["source"]["kind"] == "create"
    current = client.get(record_url(person))
    assert {row["field"].name: row for row in current.context["rows"]}["sex"]["value"] == "女"
    before = client.get(record_url(person), {"as_of": (day - datetime.timedelta(days=30)).isoformat()})
    assert 'data-testid="record-not-yet"' in before.content.decode()
    assert before.context["edit_form"] is None
    assert AccessLog.objects.count() == 2  # the page read at a date before creation reads nothing


# --- Corrections -----------------------------------------------------------------------------------------


def test_correction_submitted_accepted_and_shown_in_history(client, people, users):
    person = people["lixia"]
    client.force_login(users["ga_lixia"])
    form = client.get(
        record_url(person, "registry:correct"), {"field": "marital_status"}, headers={"HX-Request": "true"}
    )
    assert form.status_code == 200 and "<html" not in form.content.decode()
    assert "山东省民政厅（MZ）" in form.content.decode()
    response = client.post(
        record_url(person, "registry:correct"),
        {"field": "marital_status", "value": "已婚", "reason": "当事人提交结婚证"},
    )
    assert response.status_code == 302
    request = CorrectionRequest.objects.get()
    assert request.status == "pending" and request.submitted_by_org == users["ga_lixia"].department

    client.force_login(users["mz"])
    inbox = client.get(reverse("registry:corrections"))
    assert [row["req"].pk for row in inbox.context["pending"]] == [request.pk]
    html = inbox.content.decode()
    assert request.due_on.strftime("%Y-%m-%d") in html and "当事人提交结婚证" in html
    decided = client.post(
        reverse("registry:decide", kwargs={"pk": request.pk}), {"decision": "accept", "note": "核实无误"}
    )
    assert decided.status_code == 302
    request.refresh_from_db()
    assert request.status == "accepted" and request.decided_by_org == users["mz"].department
    assert services.record_values_now(fresh(person))["marital_status"] == "已婚"
    page = client.get(record_url(person))
    history = page.context["history"]
    assert history[0]["kind"] == "correction" and history[0]["source"] == "山东省民政厅"
    assert '<span class="old">未婚</span> → <span class="new">已婚</span>' in page.content.decode()


def test_authoritative_field_needs_no_correction(client, people, users):
    client.force_login(users["ga_lixia"])
    response = client.get(record_url(people["lixia"], "registry:correct"), {"field": "sex"})
    assert response.status_code == 302
    assert not CorrectionRequest.objects.exists()
    assert client.get(record_url(people["lixia"], "registry:correct"), {"field": "nope"}).status_code == 404


def test_correction_of_a_personal_field_stays_masked_in_the_inbox(client, people, users):
    person = people["lixia"]
    services.submit_correction(person, "name", "张三风", actor=users["mz"], reason="与民政登记不一致")
    client.force_login(users["ga_lixia"])
    html = client.get(reverse("registry:corrections")).content.decode()
    assert "张**" in html and "张三风" not in html
    assert_no_personal_values(html)
    # The other district's GA branch is not the authority for this record's division.
    client.force_login(users["ga_shizhong"])
    assert client.get(reverse("registry:corrections")).context["pending"] == []


def test_overdue_requests_are_highlighted_and_rejections_need_a_note(client, people, users):
    person = people["lixia"]
    late = services.submit_correction(person, "marital_status", "离婚", actor=users["ga"], reason="法院判决")
    CorrectionRequest.objects.filter(pk=late.pk).update(due_on=timezone.localdate() - datetime.timedelta(days=3))
    client.force_login(users["mz"])
    response = client.get(reverse("registry:corrections"))
    assert response.context["overdue_count"] == 1
    html = response.content.decode()
    assert 'class="is-overdue"' in html and "已逾期" in html
    client.post(reverse("registry:decide", kwargs={"pk": late.pk}), {"decision": "reject", "note": ""})
    late.refresh_from_db()
    assert late.status == "pending"
    client.post(reverse("registry:decide", kwargs={"pk": late.pk}), {"decision": "reject", "note": "判决书未生效"})
    late.refresh_from_db()
    assert late.status == "rejected" and late.decision_note == "判决书未生效"
    assert services.record_values_now(fresh(person))["marital_status"] == "未婚"


def test_only_the_authority_may_decide(client, people, users):
    request = services.submit_correction(people["lixia"], "marital_status", "已婚", actor=users["ga"], reason="核对")
    client.force_login(users["ga"])
    response = client.post(reverse("registry:decide", kwargs={"pk": request.pk}), {"decision": "accept"})
    assert response.status_code == 403
    request.refresh_from_db()
    assert request.status == "pending"


# --- Schemas -----------------------------------------------------------------------------------------------


def test_schema_page_lists_versions_and_publishes_an_added_field(client, people, users):
    client.force_login(users["admin"])
    url = reverse("registry:schema", kwargs={"code": "pages.person"})
    page = client.get(url)
    assert page.status_code == 200
    assert "婚姻状况" in page.content.decode()
    response = client.post(
        url,
        {
            "name": "blood_type",
            "label": "血型",
            "label_en": "Blood type",
            "type": "enum",
            "sensitivity": "internal",
            "authority": "WJ",
            "choices": "A\nB\nAB\nO",
            "note": "卫健委提出",
        },
    )
    assert response.status_code == 302
    registry = services.get_registry("pages.person")
    assert registry.current_schema.version == 2
    fields = {f.name: f for f in services.registry_fields(registry)}
    assert fields["blood_type"].choices == ("A", "B", "AB", "O") and fields["blood_type"].authority == "WJ"
    html = client.get(url).content.decode()
    assert 'data-testid="schema-version-2"' in html and "卫健委提出" in html
    # Existing records keep their version and the record page shows the new (empty) field.
    client.force_login(users["ga"])
    record_page = client.get(record_url(people["lixia"]))
    assert "血型" in record_page.content.decode()


def test_schema_errors_are_shown(client, registry, users):
    client.force_login(users["admin"])
    url = reverse("registry:schema", kwargs={"code": "pages.person"})
    response = client.post(url, {"name": "blood_type", "label": "血型", "type": "enum", "sensitivity": "public"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-testid="schema-errors"' in html and "枚举类型须列出可选值" in html
    duplicate = client.post(url, {"name": "sex", "label": "性别2", "type": "string", "sensitivity": "public"})
    assert "名称重复" in duplicate.content.decode()
    bad_name = client.post(url, {"name": "Bad-Name", "label": "x", "type": "string", "sensitivity": "public"})
    assert bad_name.status_code == 400 and "字段名须以小写字母开头" in bad_name.content.decode()
    assert services.get_registry("pages.person").current_schema.version == 1


def test_schema_pages_are_for_administrators_data_administrators_and_the_owner(client, registry, users):
    url = reverse("registry:schema", kwargs={"code": "pages.person"})
    for key, status in (("mz", 403), ("ga_lixia", 403), ("ga", 200), ("dsj", 200), ("admin", 200)):
        client.force_login(users[key])
        assert client.get(url).status_code == status, key
    client.force_login(users["admin"])
    assert client.get(reverse("registry:schema", kwargs={"code": "no.such"})).status_code == 404
    # Provincial data administrators (DSJ) publish too; other departments only read.
    client.force_login(users["dsj"])
    assert 'data-testid="schema-readonly"' not in client.get(url).content.decode()
    by_dsj = client.post(url, {"name": "alias", "label": "别名", "type": "string", "sensitivity": "public"})
    assert by_dsj.status_code == 302
    assert services.get_registry("pages.person").current_schema.version == 2
    client.force_login(users["ga_lixia"])
    refused = client.post(url, {"name": "x", "label": "x", "type": "string", "sensitivity": "public"})
    assert refused.status_code == 403
    client.force_login(users["ga"])
    published = client.post(url, {"name": "nickname", "label": "曾用名", "type": "string", "sensitivity": "personal"})
    assert published.status_code == 302
    assert services.get_registry("pages.person").current_schema.version == 3


def test_administrator_without_department_reads_but_cannot_edit(client, people, users):
    client.force_login(users["admin"])
    listing = client.get(reverse("registry:index"))
    assert [row["count"] for row in listing.context["rows"]] == [2]
    response = client.get(record_url(people["shizhong"]))
    assert response.status_code == 200 and response.context["edit_form"] is None
    assert_no_personal_values(response.content.decode())
    assert AccessLog.objects.get().reader == "p-admin"
    assert client.get(reverse("registry:corrections")).context["pending"] == []


def test_pages_in_english_use_english_labels(client, people, users, settings):
    client.force_login(users["ga"])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    response = client.get(record_url(people["lixia"]))
    html = response.content.decode()
    assert 'lang="en"' in html
    assert "Values and their sources" in html and "ID number" in html and "Propose correction" in html
    client.force_login(users["mz"])
    listing = client.get(reverse("registry:index")).content.decode()
    assert "Registries" in listing and "Records" in listing and "Fields and versions" not in listing
