"""BPMN process definitions (流程定义) and the SpiffWorkflow engine adapter of 一网通办 applications.

Processes are BPMN 2.0 files kept in ``src/dgov/services/processes/`` (editable in any BPMN modeler)
and loaded per item by its ``process_key``: :func:`load_definition` parses and validates a file —
it must parse, have exactly one executable process with a start event and at least one user task,
and every user task must sit in a lane (the lane is the role: ``applicant`` tasks go to the
applicant, any other lane to the item's competent department). A file that fails is refused with a
:class:`ProcessDefinitionError` naming the reason; nothing is stored.

State is stored compactly (:func:`dump_state`): SpiffWorkflow's dict serialization *without* the
spec (kept once on the :class:`ProcessDefinition`) and without the data of completed tasks (the
engine never reads it again to resume), so an application's state grows with the number of task
instances only, not with their accumulated data.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from django.db import IntegrityError, transaction
from django.db.models import Max
from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser, BpmnValidator
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.defaults import StartEvent, UserTask
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from dgov.kernel.services import audit
from dgov.services.models_process import ProcessDefinition

__all__ = [
    "PROCESS_DIR",
    "APPLICANT_LANE",
    "ProcessDefinitionError",
    "parse_bpmn",
    "load_definition",
    "load_builtin",
    "definition_for",
    "new_workflow",
    "dump_state",
    "restore",
    "ready_user_tasks",
]

PROCESS_DIR = Path(__file__).resolve().parent / "processes"
APPLICANT_LANE = "applicant"
_serializer = BpmnWorkflowSerializer()
# SpiffWorkflow logs every task state change at INFO with the task's data: far too chatty (and the data
# may be personal) for the platform's JSON logs; its warnings and errors still come through.
logging.getLogger("spiff").setLevel(logging.WARNING)
_spec_cache: dict[str, object] = {}


class ProcessDefinitionError(ValueError):
    """A BPMN file was refused at load time (does not parse, or lacks what an application process needs)."""


def parse_bpmn(xml: str | bytes, *, source: str = "") -> tuple[str, str, object]:
    """Parse and validate BPMN XML; return ``(process id, process name, spec)`` or raise ProcessDefinitionError."""
    data = xml.encode() if isinstance(xml, str) else xml
    where = source or "BPMN"
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise ProcessDefinitionError(f"{where}: not well-formed XML: {exc}") from None
    parser = BpmnParser(validator=BpmnValidator())
    try:
        parser.add_bpmn_xml(root, filename=source or None)
        ids = parser.get_process_ids()
    except Exception as exc:  # SpiffWorkflow raises ValidationException and friends
        raise ProcessDefinitionError(f"{where}: not valid BPMN 2.0: {exc}") from None
    executable = [pid for pid in ids if pid]
    if len(executable) != 1:
        raise ProcessDefinitionError(f"{where}: must contain exactly one process, found {len(executable)}")
    pid = executable[0]
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
    if not root.xpath("//bpmn:process[@id=$pid]/bpmn:startEvent", namespaces=ns, pid=pid):
        raise ProcessDefinitionError(f"{where}: process {pid!r} has no start event")
    try:
        spec = parser.get_spec(pid)
    except Exception as exc:
        raise ProcessDefinitionError(f"{where}: process {pid!r} cannot be built: {exc}") from None
    specs = list(spec.task_specs.values())
    if not any(isinstance(s, StartEvent) for s in specs):
        raise ProcessDefinitionError(f"{where}: process {pid!r} has no start event")
    user_tasks = [s for s in specs if isinstance(s, UserTask)]
    if not user_tasks:
        raise ProcessDefinitionError(f"{where}: process {pid!r} has no user task")
    laneless = [s.name for s in user_tasks if not s.lane]
    if laneless:
        raise ProcessDefinitionError(f"{where}: user tasks outside a lane (no role): {', '.join(laneless)}")
    return pid, spec.description or pid, spec


def load_definition(xml: str | bytes, *, actor, source: str = "") -> ProcessDefinition:
    """Validate BPMN XML and store it as the next version of its process key (unchanged files are not re-stored)."""
    text = xml.decode() if isinstance(xml, bytes) else xml
    key, name, spec = parse_bpmn(text, source=source)
    digest = hashlib.sha256(text.encode()).hexdigest()
    spec_json = _serializer.to_dict(spec)
    with transaction.atomic():
        latest = ProcessDefinition.objects.select_for_update().filter(key=key).order_by("-version").first()
        if latest is not None and latest.sha256 == digest and latest.is_active:
            return latest
        version = (ProcessDefinition.objects.filter(key=key).aggregate(v=Max("version"))["v"] or 0) + 1
        definition = ProcessDefinition.objects.create(
            key=key,
            version=version,
            name=name,
            bpmn_xml=text,
            spec_json=spec_json,
            sha256=digest,
            source=source[:255],
            loaded_by=str(getattr(actor, "username", actor) or "")[:150],
        )
        audit.record(
            "services.process.load",
            actor=actor,
            target=definition,
            detail={"key": key, "version": version, "sha256": digest, "source": source},
        )
    return definition


def load_builtin(key: str, *, actor) -> ProcessDefinition:
    """Load ``processes/<key>.bpmn`` from the repository."""
    path = PROCESS_DIR / f"{key}.bpmn"
    if not path.is_file():
        raise ProcessDefinitionError(f"no process definition {key!r} (no file {path.name})")
    return load_definition(path.read_text(encoding="utf-8"), actor=actor, source=path.name)


def definition_for(key: str, *, actor=None) -> ProcessDefinition:
    """The newest active definition of ``key``, loading the repository's file on first use."""
    active = ProcessDefinition.objects.filter(key=key, is_active=True).order_by("-version")
    definition = active.first()
    if definition is None:
        try:
            with transaction.atomic():  # a savepoint: another request may load the same file at the same time
                definition = load_builtin(key, actor=actor or "system:services")
        except IntegrityError:
            definition = active.first()
            if definition is None:
                raise
    return definition


def _spec(definition: ProcessDefinition):
    """The parsed spec of a definition (cached by content digest: a stored definition never changes)."""
    spec = _spec_cache.get(definition.sha256)
    if spec is None:
        spec = _serializer.from_dict(definition.spec_json)
        _spec_cache[definition.sha256] = spec
    return spec


def new_workflow(definition: ProcessDefinition) -> BpmnWorkflow:
    """A new process instance of ``definition``, run to its first wait state."""
    workflow = BpmnWorkflow(_spec(definition))
    workflow.do_engine_steps()
    return workflow


def dump_state(workflow: BpmnWorkflow) -> dict:
    """The compact state to persist: no spec, no data or deltas of completed tasks."""
    state = _serializer.to_dict(workflow)
    state.pop("spec", None)
    completed = TaskState.COMPLETED
    for task in state["tasks"].values():
        if task["state"] == completed:
            task["data"] = {}
            task["delta"] = {}
    return state


def restore(definition: ProcessDefinition, state: dict) -> BpmnWorkflow:
    """Rebuild a process instance from :func:`dump_state` output and its definition."""
    full = dict(state)
    full["spec"] = definition.spec_json
    return _serializer.from_dict(full)


def ready_user_tasks(workflow: BpmnWorkflow) -> list:
    """The engine's READY user tasks (the work waiting for a person)."""
    return [t for t in workflow.get_tasks(state=TaskState.READY) if isinstance(t.task_spec, UserTask)]
