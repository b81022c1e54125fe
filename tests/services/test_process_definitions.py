"""Process definitions (流程定义): BPMN files parsed and validated at load time, by service and CLI."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from dgov.kernel.models import AuditRecord
from dgov.services import processes
from dgov.services.models import ProcessDefinition

pytestmark = pytest.mark.django_db

NO_USER_TASK = """<?xml version="1.0"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="empty" isExecutable="true">
    <bpmn:startEvent id="s" /><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="e" /><bpmn:endEvent id="e" />
  </bpmn:process>
</bpmn:definitions>"""

NO_START = """<?xml version="1.0"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="nostart" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="official"><bpmn:flowNodeRef>t</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:userTask id="t" /><bpmn:sequenceFlow id="f" sourceRef="t" targetRef="e" /><bpmn:endEvent id="e" />
  </bpmn:process>
</bpmn:definitions>"""


def test_builtin_processes_load_and_version():
    review = processes.load_builtin("review", actor="tester")
    again = processes.load_builtin("review", actor="tester")
    parallel = processes.load_builtin("parallel_review", actor="tester")
    assert (review.key, review.version) == ("review", 1)
    assert again.pk == review.pk  # an unchanged file is not stored twice
    assert parallel.key == "parallel_review"
    assert review.spec_json and "task_specs" in review.spec_json
    assert AuditRecord.objects.filter(action="services.process.load").count() == 2


@pytest.mark.parametrize(
    "xml, message",
    [
        ("<not-xml", "not well-formed XML"),
        ("<?xml version='1.0'?><root/>", "not valid BPMN"),
        (NO_USER_TASK, "no user task"),
        (NO_START, "no start event"),
    ],
)
def test_malformed_definitions_are_refused(xml, message):
    with pytest.raises(processes.ProcessDefinitionError, match=message):
        processes.load_definition(xml, actor="tester", source="bad.bpmn")
    assert not ProcessDefinition.objects.exists()


def test_cli_loads_and_refuses(tmp_path):
    good = processes.PROCESS_DIR / "review.bpmn"
    out = io.StringIO()
    call_command("services", "processes", "load", str(good), stdout=out)
    assert "review v1" in out.getvalue()
    bad = tmp_path / "bad.bpmn"
    bad.write_text(NO_USER_TASK)
    with pytest.raises(CommandError, match="no user task"):
        call_command("services_processes", "load", str(bad))
    out = io.StringIO()
    call_command("services", "processes", "list", stdout=out)
    assert "review" in out.getvalue()
