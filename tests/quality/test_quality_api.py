"""The data quality API: authentication, client scope, department and division scope, problem+json."""

import pytest

pytestmark = pytest.mark.django_db

API = "/api/v1/quality"


def _problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")


def test_registry_scores_and_detail(client, users, finished_run):
    client.force_login(users["ga"])
    listing = client.get(f"{API}/registries").json()
    person = next(row for row in listing if row["code"] == "t.person")
    assert person["run"]["id"] == finished_run.pk and person["run"]["grade"] == "C"
    detail = client.get(f"{API}/registries/t.person").json()
    assert detail["summary"]["score"] == 81.67 and detail["summary"]["dimensions"]["accuracy"] == 75.0
    rules = {r["rule"]: r for r in detail["results"]}
    assert rules["p.id.unique"]["failed"] == 2 and rules["p.id.unique"]["pass_rate"] == 75.0
    assert rules["p.marital"]["owner"] == "370000-MZ"
    assert all(r["samples"] is None for r in detail["results"])  # samples only on the run
    rule_defs = client.get(f"{API}/registries/t.person/rules").json()
    assert {r["code"] for r in rule_defs} >= {"p.id", "p.fresh"}
    runs = client.get(f"{API}/registries/t.person/runs").json()
    assert [r["id"] for r in runs] == [finished_run.pk]


def test_run_samples_are_masked_and_scoped_to_the_division(client, users, finished_run, people):
    client.force_login(users["ga"])
    body = client.get(f"{API}/runs/{finished_run.pk}").json()
    samples = {r["rule"]: r["samples"] for r in body["results"]}
    [sample] = samples["p.id"]
    assert sample["division"] == "370103" and "*" in sample["values"]["id_number"]
    assert people["P2"]["id_number"] not in str(body)
    client.force_login(users["ga_lixia"])  # a county department reads only its own division's rows
    body = client.get(f"{API}/runs/{finished_run.pk}").json()
    samples = {r["rule"]: r["samples"] for r in body["results"]}
    assert samples["p.id"] == [] and len(samples["p.household"]) == 1
    assert {r["rule"]: r["failed"] for r in body["results"]}["p.id"] == 1  # counts stay whole


def test_departments_see_only_their_own_scorecard(client, users, finished_run):
    client.force_login(users["mz"])
    assert [d["code"] for d in client.get(f"{API}/departments").json()] == ["370000-MZ"]
    card = client.get(f"{API}/departments/370000-MZ").json()
    assert card["summary"]["grade"] == "E" and card["registries"][0]["code"] == "t.person"
    _problem(client.get(f"{API}/departments/370000-GA"), 403)
    client.force_login(users["dsj"])
    assert [d["code"] for d in client.get(f"{API}/departments").json()] == ["370000-GA", "370000-MZ"]
    assert client.get(f"{API}/departments/370000-GA").json()["summary"]["score"] == 87.5
    _problem(client.get(f"{API}/departments/NOPE"), 404)


def test_registry_results_need_read_rights(client, users, finished_run):
    client.force_login(users["wj"])  # no authority over t.person
    _problem(client.get(f"{API}/registries/t.person"), 403)
    _problem(client.get(f"{API}/runs/{finished_run.pk}"), 404)
    assert client.get(f"{API}/registries").json() == []
    _problem(client.get(f"{API}/registries/t.none"), 404)


def test_clients_need_the_quality_scope(client, basic_auth, finished_run):
    reader = basic_auth("ga", ["quality:read"])
    response = client.get(f"{API}/registries/t.person", HTTP_AUTHORIZATION=reader)
    assert response.status_code == 200 and response.json()["run"]["id"] == finished_run.pk
    other = basic_auth("mz", ["registry:read"])
    _problem(client.get(f"{API}/registries", HTTP_AUTHORIZATION=other), 403)


def test_anonymous_and_citizens_are_refused(client, users, finished_run):
    _problem(client.get(f"{API}/registries"), 401)
    client.force_login(users["citizen"])
    _problem(client.get(f"{API}/registries"), 403)
    assert client.post(f"{API}/registries").status_code == 405
