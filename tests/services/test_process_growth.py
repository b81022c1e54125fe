"""Persisted process state grows linearly with a 100-task process's history, and so does per-task work."""

import json
import time
from itertools import pairwise

import pytest

from dgov.services import applications, processes
from dgov.services.models import Application, ServiceItem

from .process_helpers import GOOD, make_world

pytestmark = pytest.mark.django_db


def chain_bpmn(n: int) -> str:
    """A process of ``n`` sequential official user tasks (t1 … tn)."""
    nodes = "".join(f'<bpmn:userTask id="t{i}" name="步骤{i}" />' for i in range(1, n + 1))
    refs = "".join(f"<bpmn:flowNodeRef>t{i}</bpmn:flowNodeRef>" for i in range(1, n + 1))
    ids = ["start", *[f"t{i}" for i in range(1, n + 1)], "end_completed"]
    flows = "".join(
        f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}" />' for i, (a, b) in enumerate(pairwise(ids))
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d_chain" targetNamespace="x">
  <bpmn:process id="chain{n}" name="chain" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="official" name="official">{refs}</bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start" />{nodes}<bpmn:endEvent id="end_completed" />{flows}
  </bpmn:process>
</bpmn:definitions>"""


def test_state_size_and_completion_time_grow_linearly(django_user_model):
    world = make_world(django_user_model, prefix="grow")
    processes.load_definition(chain_bpmn(100), actor="tester", source="chain100.bpmn")
    ServiceItem.objects.filter(pk=world["item"].pk).update(process_key="chain100")
    world["item"].refresh_from_db()
    official = world["users"]["a"]
    app = applications.submit(world["item"], applicant=world["users"]["citizen"], data=GOOD, actor=official)
    sizes, times, steps = [], [], []
    for step in range(1, 101):
        task = app.tasks.get(status="open")
        started = time.perf_counter()
        applications.complete_task(task, actor=official, decision="pass", data={"opinion": "x" * 200})
        times.append(time.perf_counter() - started)
        app.refresh_from_db()
        sizes.append(len(json.dumps(app.workflow_state)))
        steps.append(step)
    assert app.status == Application.Status.APPROVED
    # Size stays inside a linear envelope: at most a constant number of bytes per completed task (the engine
    # predicts the whole chain up front, so it is nearly flat; opinions live on ApplicationTask, not in the state).
    assert all(size <= sizes[0] + step * 600 for step, size in zip(steps, sizes))
    assert "x" * 200 not in json.dumps(app.workflow_state)
    # Time per completion grows at most linearly with history (restore + dump are O(tasks)); quadratic
    # would put the last ten completions far above 10x the first ten.
    first, last = sum(times[:10]), sum(times[-10:])
    assert last < first * 8
