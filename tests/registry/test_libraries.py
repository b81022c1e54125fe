"""The shipped library definitions: they parse, install idempotently, evolve additively, fail loudly."""

import json
import shutil
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dgov.kernel.models import AuditRecord, Organization
from dgov.kernel.services.organizations import BUREAU_KINDS
from dgov.kernel.validators import make_uscc
from dgov.registry import libraries, schema, services
from dgov.registry.models import Record, Registry, RegistrySchema

BASE_LIBRARIES = {"population", "legal_entity", "credit", "macro_economy", "spatial", "licence_index"}
KINDS = {kind.kind for kind in BUREAU_KINDS}
OWNER_KINDS = ("GA", "SCJG", "FGW", "TJ", "ZRZY", "DSJ", "RS", "YJ")


@pytest.fixture
def owners(province):
    """One provincial department of every kind the shipped definitions name as owner."""
    return {
        kind: Organization.objects.create(
            name=f"山东省{kind}部门",
            code=f"370000-{kind}",
            uscc=make_uscc("1", "1", "370000", serial=n),
            level=Organization.Level.PROVINCE,
            division=province,
            kind=kind,
        )
        for n, kind in enumerate(OWNER_KINDS, start=1)
    }


@pytest.fixture
def library_dir(tmp_path):
    """A writable copy of the shipped definition files."""
    target = tmp_path / "libraries"
    shutil.copytree(libraries.LIBRARY_DIR, target)
    return target


def _edit(path, change):
    """Load a definition file, let ``change`` modify it, write it back."""
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _field(data, registry, name):
    """The field dict ``name`` of ``registry`` inside a loaded file."""
    entry = next(r for r in data["registries"] if r["code"] == registry)
    return next(f for f in entry["fields"] if f["name"] == name)


# --- The definitions ------------------------------------------------------------------------------------


def test_shipped_definitions_parse_and_cover_every_library():
    definitions = libraries.load_definitions()
    codes = {d["code"] for d in definitions}
    assert codes >= {
        "population.person",
        "population.household",
        "population.event",
        "legal_entity.enterprise",
        "credit.licence",
        "credit.penalty",
        "credit.list",
        "macro.indicator",
        "spatial.division",
        "spatial.address",
        "spatial.poi",
        "licence.index",
        "social_security.insured",
        "emergency.resource",
    }
    assert {d["library_code"] for d in definitions if d["library"] == "base"} == BASE_LIBRARIES
    assert len({d["library_code"] for d in definitions if d["library"] == "theme"}) >= 2
    for definition in definitions:
        fields = schema.parse_fields(definition["fields"], identifier=definition["identifier_field"])
        assert definition["owner"] in KINDS, definition["code"]
        for field in fields:
            # every field names its authoritative source by department kind, and has both labels
            assert field.authorities and set(field.authorities) <= KINDS, (definition["code"], field.name)
            assert field.label and field.label_en, (definition["code"], field.name)
            if field.type == "reference":
                assert field.ref in codes


def test_definitions_carry_the_domain_rules():
    by_code = {d["code"]: d for d in libraries.load_definitions()}
    person = {f.name: f for f in schema.parse_fields(by_code["population.person"]["fields"], identifier="id_number")}
    assert person["id_number"].type == "resident_id" and person["id_number"].is_personal
    assert person["id_number"].unique and person["id_number"].lookup
    assert person["phone"].is_personal and person["address"].is_personal
    assert person["household"].ref == "population.household"
    assert set(person["status"].choices) == {"normal", "deceased", "migrated"}
    assert set(person["status"].authorities) == {"GA", "WJ"}
    assert by_code["population.person"]["scope_field"] == "division_code"
    enterprise = {f.name: f for f in schema.parse_fields(by_code["legal_entity.enterprise"]["fields"])}
    assert enterprise["legal_representative"].ref == "population.person"
    assert enterprise["registered_capital_fen"].type == "integer"
    division = {f.name: f for f in schema.parse_fields(by_code["spatial.division"]["fields"])}
    assert division["name"].authorities == ("MZ",) and division["boundary"].authorities == ("ZRZY",)
    assert division["boundary"].type == "geojson"
    event = {f.name: f for f in schema.parse_fields(by_code["population.event"]["fields"])}
    assert event["other_party"].authorities == ("MZ",)
    assert {"WJ", "MZ"} <= set(event["kind"].authorities)
    licence_index = {f.name: f for f in schema.parse_fields(by_code["licence.index"]["fields"])}
    assert licence_index["holder_id_number"].is_personal and licence_index["holder_uscc"].type == "uscc"
    assert by_code["social_security.insured"]["library"] == "theme"
    assert by_code["emergency.resource"]["owner"] == "YJ"


# --- Installing ----------------------------------------------------------------------------------------


def test_install_creates_every_registry_with_resolved_owners(owners):
    report = libraries.install_libraries(actor="system:test", province_code="370000")
    definitions = libraries.load_definitions()
    assert sorted(report.created) == sorted(d["code"] for d in definitions)
    assert not report.upgraded and not report.unchanged
    for definition in definitions:
        registry = services.get_registry(definition["code"])
        assert registry.owner == owners[definition["owner"]]
        assert registry.current_schema.version == 1
        assert registry.library == definition["library"]
        assert registry.identifier_field == definition["identifier_field"]
    assert services.get_registry("population.person").owner.code == "370000-GA"
    audit = AuditRecord.objects.filter(action="registry.library.install").get()
    assert sorted(audit.detail["created"]) == sorted(report.created)


def test_install_is_idempotent(owners):
    libraries.install_libraries(actor="system:test", province_code="370000")
    schemas = RegistrySchema.objects.count()
    audits = AuditRecord.objects.count()
    again = libraries.install_libraries(actor="system:test", province_code="370000")
    assert not again.created and not again.upgraded and not again.drifted
    assert len(again.unchanged) == Registry.objects.count()
    assert RegistrySchema.objects.count() == schemas
    assert AuditRecord.objects.count() == audits  # nothing changed, nothing audited


def test_a_definition_that_gained_a_field_publishes_a_new_version(owners, library_dir):
    libraries.install_libraries(actor="system:test", province_code="370000")
    registry = services.get_registry("emergency.resource")
    ga = owners["YJ"]
    record = services.create_record(
        registry,
        {
            "resource_code": "YJ370000001",
            "name": "省级应急物资储备库",
            "kind": "warehouse",
            "division_code": "370000",
            "owner_department": ga.code,
            "status": "available",
        },
        actor="system:test",
        source=ga,
    )

    def gain(data):
        data["registries"][0]["fields"].append(
            {"name": "manager", "label": "负责人", "label_en": "Manager", "type": "string", "authority": "YJ"}
        )

    _edit(library_dir / "emergency.json", gain)
    report = libraries.install_libraries(
        actor="system:test", province_code="370000", definitions=libraries.load_definitions(library_dir)
    )
    assert report.upgraded == {"emergency.resource": 2}
    assert "emergency.resource" not in report.unchanged
    registry = services.get_registry("emergency.resource")
    assert registry.current_schema.version == 2
    names = [f["name"] for f in registry.current_schema.fields]
    assert names[-1] == "manager" and "resource_code" in names
    record.refresh_from_db()
    assert record.schema_version == 1  # records keep the version they were written with
    # installing the same definitions again changes nothing
    again = libraries.install_libraries(
        actor="system:test", province_code="370000", definitions=libraries.load_definitions(library_dir)
    )
    assert not again.upgraded and "emergency.resource" in again.unchanged


def test_install_never_removes_fields_an_administrator_added(owners):
    libraries.install_libraries(actor="system:test", province_code="370000")
    registry = services.get_registry("spatial.poi")
    extra = {"name": "opening_hours", "label": "开放时间", "type": "string", "authority": "ZRZY"}
    services.publish_schema_version(registry, [*registry.current_schema.fields, extra], actor="system:test")
    report = libraries.install_libraries(actor="system:test", province_code="370000")
    assert "spatial.poi" in report.unchanged
    registry = services.get_registry("spatial.poi")
    assert registry.current_schema.version == 2
    assert "opening_hours" in [f["name"] for f in registry.current_schema.fields]


def test_changed_attributes_are_reported_not_applied(owners, library_dir):
    libraries.install_libraries(actor="system:test", province_code="370000")
    _edit(library_dir / "spatial.json", lambda data: _field(data, "spatial.poi", "name").update(label="地点名称"))
    report = libraries.install_libraries(
        actor="system:test", province_code="370000", definitions=libraries.load_definitions(library_dir)
    )
    assert report.drifted == {"spatial.poi": ["name"]}
    assert "spatial.poi" in report.unchanged
    fields = services.get_registry("spatial.poi").current_schema.fields
    assert next(f for f in fields if f["name"] == "name")["label"] == "名称"


def test_install_without_the_owner_department_fails_clearly(province):
    with pytest.raises(libraries.LibraryDefinitionError, match="GA|SCJG|FGW"):
        libraries.install_libraries(actor="system:test", province_code="370000")
    assert not Registry.objects.exists()  # all or nothing


def test_owner_may_name_a_department_code(owners, library_dir):
    _edit(library_dir / "emergency.json", lambda data: data["registries"][0].update(owner="370000-RS"))
    definitions = [d for d in libraries.load_definitions(library_dir) if d["code"] == "emergency.resource"]
    libraries.install_libraries(actor="system:test", province_code="370000", definitions=definitions)
    assert services.get_registry("emergency.resource").owner == owners["RS"]


# --- Broken definitions --------------------------------------------------------------------------------


def test_a_field_with_an_unknown_type_names_file_registry_and_field(library_dir):
    _edit(library_dir / "credit.json", lambda data: _field(data, "credit.penalty", "fine_fen").update(type="money"))
    with pytest.raises(libraries.LibraryDefinitionError) as caught:
        libraries.load_definitions(library_dir)
    message = str(caught.value)
    assert "credit.json" in message and "credit.penalty" in message and "fine_fen" in message and "money" in message


def test_invalid_json_names_file_and_line(library_dir):
    (library_dir / "broken.json").write_text('{\n  "library": "theme",\n  "registries": [,]\n}', encoding="utf-8")
    with pytest.raises(libraries.LibraryDefinitionError, match=r"broken\.json: line 3"):
        libraries.load_definitions(library_dir)


def test_missing_identifier_field_is_refused(library_dir):
    _edit(library_dir / "spatial.json", lambda data: data["registries"][2].update(identifier_field="poi_code"))
    with pytest.raises(libraries.LibraryDefinitionError, match=r"spatial\.json: registry spatial\.poi: .*poi_code"):
        libraries.load_definitions(library_dir)


def test_reference_to_an_unknown_registry_is_refused(library_dir):
    _edit(
        library_dir / "legal_entity.json",
        lambda data: _field(data, "legal_entity.enterprise", "legal_representative").update(ref="population.people"),
    )
    with pytest.raises(libraries.LibraryDefinitionError, match=r"legal_representative: .*population\.people"):
        libraries.load_definitions(library_dir)


def test_duplicate_registry_codes_are_refused(library_dir):
    shutil.copy(library_dir / "emergency.json", library_dir / "emergency_copy.json")
    with pytest.raises(libraries.LibraryDefinitionError, match=r"emergency\.resource.*emergency\.json"):
        libraries.load_definitions(library_dir)


def test_scope_field_must_be_a_division_code(library_dir):
    _edit(library_dir / "emergency.json", lambda data: data["registries"][0].update(scope_field="name"))
    with pytest.raises(libraries.LibraryDefinitionError, match=r"emergency\.resource: field name"):
        libraries.load_definitions(library_dir)


def test_unknown_keys_are_refused(library_dir):
    _edit(library_dir / "population.json", lambda data: data["registries"][0].update(ownr="GA"))
    with pytest.raises(libraries.LibraryDefinitionError, match=r"population\.person.*ownr"):
        libraries.load_definitions(library_dir)


# --- The command ---------------------------------------------------------------------------------------


def test_install_command_installs_once(owners, capsys):
    call_command("registry", "install", "--province", "370000")
    assert Registry.objects.count() == len(libraries.load_definitions())
    assert "population.person" in capsys.readouterr().out
    call_command("registry", "install", "--province", "370000")
    assert "0 created" in capsys.readouterr().out


def test_install_command_check_and_errors(owners, library_dir, capsys):
    call_command("registry", "install", "--check")
    assert "14" in capsys.readouterr().out
    assert not Registry.objects.exists()
    _edit(library_dir / "macro_economy.json", lambda data: data.pop("registries"))
    with pytest.raises(CommandError, match=r"macro_economy\.json"):
        call_command("registry", "install", "--dir", str(library_dir))


def test_bulk_rows_may_name_their_uid(owners):
    """The demo draws uids up front so that records of one run refer to each other; the engine keeps them."""
    libraries.install_libraries(actor="system:test", province_code="370000")
    registry = services.get_registry("emergency.resource")
    wanted = uuid.UUID(int=12345, version=4)
    row = {
        "resource_code": "YJ370000009",
        "name": "省级救援队",
        "kind": "team",
        "division_code": "370000",
        "owner_department": "370000-YJ",
        "status": "available",
    }
    created = services.bulk_create_records(
        registry, [{**row, "_uid": wanted}], actor="system:test", source=owners["YJ"]
    )
    assert created == 1
    assert Record.objects.get(registry=registry).uid == wanted
    with pytest.raises(schema.RecordValidationError) as caught:
        services.bulk_create_records(
            registry,
            [{**row, "resource_code": "YJ370000010", "_uid": "not-a-uuid"}],
            actor="system:test",
            source=owners["YJ"],
        )
    assert "row 1: _uid" in caught.value.errors


def test_update_fields_applies_shipped_labels_and_rules_to_installed_registries(owners, library_dir):
    """An installation made before enum labels and conditional authority gets them with --update-fields."""

    def strip(data):
        for entry in data["registries"]:
            for item in entry["fields"]:
                item.pop("authority_by_value", None)
                if item.get("type") == "enum":
                    item["choices"] = [c["value"] if isinstance(c, dict) else c for c in item["choices"]]

    _edit(library_dir / "population.json", strip)
    libraries.install_libraries(
        actor="system:test", province_code="370000", definitions=libraries.load_definitions(library_dir)
    )
    events = services.get_registry("population.event")
    assert not next(f for f in services.registry_fields(events) if f.name == "kind").authority_by_value
    report = libraries.install_libraries(actor="system:test", province_code="370000")
    assert "kind" in report.drifted["population.event"] and "population.event" in report.unchanged
    out = StringIO()
    call_command("registry", "install", "--update-fields", "--province", "370000", stdout=out)
    assert "updated population.event: kind" in out.getvalue()
    events = services.get_registry("population.event")
    assert events.current_schema.version == 2
    kind = next(f for f in services.registry_fields(events) if f.name == "kind")
    assert kind.authority_rules()["birth"] == ("WJ",)
    sex = next(f for f in services.registry_fields(services.get_registry("population.person")) if f.name == "sex")
    assert sex.choice_label("2") == "女"
    again = libraries.install_libraries(actor="system:test", province_code="370000", update_fields=True)
    assert not again.upgraded and not again.updated
