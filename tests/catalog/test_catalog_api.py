"""The catalogue API: search with facets, entries, DCAT-AP JSON-LD and Turtle, visibility, problem+json."""

import json
import re

import pytest

pytestmark = pytest.mark.django_db

API = "/api/v1/catalog"


@pytest.fixture
def catalogue(users, make_entry):
    """One open entry (企业营业执照信息), one government-only entry, one draft."""
    open_entry = make_entry(users["scjg"], publish_by=users["dsj"], open_type="unconditional")
    internal = make_entry(
        users["ga"],
        name="人口基本信息",
        cls="101001",
        publish_by=users["dsj"],
        sharing_type="conditional",
        sharing_conditions="身份核验",
        items=[{"registry": "t.person", "registry_field": "id_number"}],
        summary="户籍人口的公民身份号码。",
        keywords="户籍",
    )
    draft = make_entry(users["scjg"], name="草稿资源")
    return {"open": open_entry, "internal": internal, "draft": draft}


def key(resource):
    return resource.code.replace("/", "-")


def test_search_for_officials_with_facets(client, users, catalogue):
    client.force_login(users["mz"])
    body = client.get(f"{API}/resources", {"q": "营业执照"}).json()
    assert body["count"] == 1 and body["results"][0]["code"] == catalogue["open"].code
    assert body["words"] == ["营业执照"]
    every = client.get(f"{API}/resources").json()
    assert every["count"] == 2
    providers = {v["value"]: v["count"] for v in every["facets"]["provider"]}
    assert providers == {"370000-SCJG": 1, "370000-GAT": 1}
    labels = {v["value"]: v["label"] for v in every["facets"]["sharing_type"]}
    assert labels["conditional"] == "有条件共享"
    only_ga = client.get(f"{API}/resources", {"provider": "370000-GAT"}).json()
    assert [r["code"] for r in only_ga["results"]] == [catalogue["internal"].code]


def test_anonymous_and_citizens_see_only_open_entries(client, users, catalogue):
    body = client.get(f"{API}/resources").json()
    assert [r["code"] for r in body["results"]] == [catalogue["open"].code]
    assert client.get(f"{API}/resources/{key(catalogue['internal'])}").status_code == 404
    assert client.get(f"{API}/resources/{key(catalogue['internal'])}.ttl").status_code == 404
    client.force_login(users["citizen"])
    assert client.get(f"{API}/resources/{key(catalogue['internal'])}.jsonld").status_code == 404
    detail = client.get(f"{API}/resources/{key(catalogue['open'])}").json()
    assert detail["conflicts"] is None and detail["versions"][0]["published_by"] == ""
    catalog = json.loads(client.get(f"{API}/dcat.jsonld").content)
    assert [d["dct:identifier"] for d in catalog["dcat:dataset"]] == [catalogue["open"].code]


def test_drafts_only_for_their_department_and_reviewers(client, users, catalogue):
    url = f"{API}/resources/{key(catalogue['draft'])}"
    client.force_login(users["ga"])
    response = client.get(url)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")
    client.force_login(users["scjg2"])
    body = client.get(url).json()
    assert body["status"] == "draft" and body["published"] is None and body["working_copy"]["name"] == "草稿资源"
    client.force_login(users["dsj"])
    assert client.get(url).status_code == 200


def test_entry_detail_and_code_forms(client, users, catalogue):
    client.force_login(users["ga"])
    resource = catalogue["open"]
    body = client.get(f"{API}/resources/{key(resource)}").json()
    assert body["code"] == resource.code and body["version"] == 1 and body["quality_score"] is None
    assert body["published"]["items"][0]["registry"] == "t.enterprise"
    assert body["conflicts"] == [] and body["versions"][0]["number"] == 1
    assert client.get(f"{API}/resources/{resource.code.replace('/', '%2F')}").status_code in (200, 404)


def test_dcat_jsonld_has_the_mapped_properties(client, users, catalogue):
    client.force_login(users["ga"])
    resource = catalogue["internal"]
    response = client.get(f"{API}/resources/{key(resource)}.jsonld")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/ld+json")
    node = json.loads(response.content)
    assert node["@context"]["dcat"] == "http://www.w3.org/ns/dcat#"
    assert node["@type"] == "dcat:Dataset"
    assert node["@id"].endswith(f"/api/v1/catalog/resources/{key(resource)}")
    assert node["dct:identifier"] == resource.code
    assert node["dct:title"] == {"@value": "人口基本信息", "@language": "zh"}
    assert node["dct:publisher"]["foaf:name"]["@value"] == "山东省公安厅"
    assert node["dct:publisher"]["dct:identifier"] == resource.provider_code
    assert node["dcat:theme"]["skos:notation"] == "101001"
    assert node["dct:accrualPeriodicity"]["@id"].endswith("/frequency/UPDATE_CONT")
    assert node["dct:accessRights"]["@id"].endswith("/access-right/NON_PUBLIC")
    assert node["dgov:sharingType"]["@id"] == "urn:dgov:ns:catalog:sharing/conditional"
    assert node["dgov:sharingConditions"]["@value"] == "身份核验"
    assert node["dct:issued"]["@type"] == "xsd:date" and node["owl:versionInfo"] == "1"
    column = node["dcat:distribution"]["csvw:tableSchema"]["csvw:column"][0]
    assert column["csvw:name"] == "id_number" and column["dgov:length"] == 18
    assert column["dct:source"]["@id"].endswith("/api/v1/registries/t.person/schema#id_number")
    for prefix_name in {k.split(":")[0] for k in _keys(node) if ":" in k}:
        assert prefix_name in node["@context"], prefix_name


def _keys(value):
    if isinstance(value, dict):
        for k, v in value.items():
            if not k.startswith("@"):
                yield k
            yield from _keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from _keys(v)


# A tiny Turtle tokenizer and checker: enough of the grammar to catch broken output.
_TOKEN = re.compile(
    r'\s*(?:(?P<prefix>@prefix\s+[A-Za-z][\w-]*:\s*<[^<>"{}|^`\\\s]*>\s*\.)'
    r'|(?P<iri><[^<>"{}|^`\\\s]*>)'
    r'|(?P<string>"(?:[^"\\\n\r]|\\[tbnrf"\'\\])*"(?:@[a-zA-Z]+(?:-[a-zA-Z0-9]+)*|\^\^(?:<[^>\s]*>|[A-Za-z][\w-]*:[\w-]+))?)'
    r"|(?P<number>[+-]?\d+(?:\.\d+)?)"
    r"|(?P<bool>true|false)"
    r"|(?P<a>a(?=\s))"
    r"|(?P<pname>[A-Za-z][\w-]*:[A-Za-z_][\w.-]*[\w-]|[A-Za-z][\w-]*:[A-Za-z_])"
    r"|(?P<punct>[;,.\[\]]))"
)


def parse_turtle(text):
    """Tokenize and check the statement structure; return (prefixes, triples as token texts)."""
    prefixes, tokens, pos = set(), [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        assert match and match.end() > pos, f"cannot tokenize at {text[pos : pos + 60]!r}"
        kind = match.lastgroup
        if kind == "prefix":
            prefixes.add(match.group(kind).split()[1].rstrip(":"))
        else:
            tokens.append((kind, match.group(kind)))
        pos = match.end()
    for kind, value in tokens:
        if kind == "pname" or (kind == "string" and "^^" in value and not value.endswith(">")):
            name = value.split("^^")[-1] if kind == "string" else value
            assert name.split(":")[0] in prefixes, f"undeclared prefix in {value}"
    tokens.append(("end", ""))  # a sentinel: running off the end is a malformed document
    triples, i = [], 0

    def term(i):
        kind, value = tokens[i]
        if value == "[":
            i = predicate_list(i + 1, "[]")
            assert tokens[i][1] == "]", "unclosed ["
            return i + 1, "[]"
        assert kind in ("iri", "pname", "string", "number", "bool"), f"unexpected {value}"
        return i + 1, value

    def predicate_list(i, subject):
        while True:
            kind, verb = tokens[i]
            assert kind in ("iri", "pname", "a"), f"bad predicate {verb}"
            i += 1
            while True:
                i, obj = term(i)
                triples.append((subject, verb, obj))
                if tokens[i][1] != ",":
                    break
                i += 1
            if tokens[i][1] != ";":
                return i
            i += 1
            if tokens[i][1] in (".", "]"):
                return i

    while tokens[i][0] != "end":
        kind, subject = tokens[i]
        assert kind in ("iri", "pname"), f"bad subject {subject}"
        i = predicate_list(i + 1, subject)
        assert tokens[i][1] == ".", f"statement not closed: {tokens[i]}"
        i += 1
    return prefixes, triples


def test_turtle_is_well_formed_and_states_the_same_facts(client, users, catalogue):
    client.force_login(users["ga"])
    resource = catalogue["internal"]
    response = client.get(f"{API}/resources/{key(resource)}.ttl")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/turtle")
    prefixes, triples = parse_turtle(response.content.decode())
    assert {"dcat", "dct", "foaf", "csvw"} <= prefixes
    subject = f"<{json.loads(client.get(f'{API}/resources/{key(resource)}.jsonld').content)['@id']}>"
    facts = {(p, o) for s, p, o in triples if s == subject}
    assert ("a", "dcat:Dataset") in facts
    assert ("dct:title", '"人口基本信息"@zh') in facts
    assert ("dct:identifier", f'"{resource.code}"') in facts
    assert any(p == "dct:publisher" for p, _o in facts)
    assert ("csvw:name", '"id_number"') in {(p, o) for _s, p, o in triples}
    assert parse_turtle('<http://x/a> <http://x/b> "c" .')[1] == [("<http://x/a>", "<http://x/b>", '"c"')]
    with pytest.raises(AssertionError):
        parse_turtle('<http://x/a> <http://x/b> "c"')


def test_whole_catalogue_turtle_and_jsonld(client, users, catalogue):
    client.force_login(users["dsj"])
    document = json.loads(client.get(f"{API}/dcat.jsonld").content)
    assert document["@type"] == "dcat:Catalog" and len(document["dcat:dataset"]) == 2
    _prefixes, triples = parse_turtle(client.get(f"{API}/dcat.ttl").content.decode())
    datasets = [o for s, p, o in triples if p == "dcat:dataset"]
    assert len(datasets) == 2
    assert sum(1 for s, p, o in triples if p == "a" and o == "dcat:Dataset") == 2


def test_problems_for_bad_input(client, users, catalogue):
    client.force_login(users["ga"])
    for params in ({"sharing_type": "sometimes"}, {"category": "x"}):
        response = client.get(f"{API}/resources", params)
        assert response.status_code == 400 and response["Content-Type"].startswith("application/problem+json")
    response = client.get(f"{API}/resources", {"page_size": 1000})
    assert response.status_code == 422 and response.json()["type"] == "urn:dgov:problem:validation-error"
    response = client.get(f"{API}/resources", {"class_item": "abc"})
    assert response.status_code == 422
    assert client.get(f"{API}/resources/999999999-999999").status_code == 404
    assert client.post(f"{API}/resources").status_code == 405


def test_api_client_reads_everything(client, orgs, catalogue):
    import base64

    from dgov.identity import services as identity_services

    client_obj, secret = identity_services.create_api_client(
        name="共享系统", organization=orgs["mz"], scopes=["registry:read"], actor="system:test"
    )
    header = "Basic " + base64.b64encode(f"{client_obj.client_id}:{secret}".encode()).decode()
    body = client.get(f"{API}/resources", HTTP_AUTHORIZATION=header).json()
    assert body["count"] == 2
    bad = "Basic " + base64.b64encode(f"{client_obj.client_id}:wrong".encode()).decode()
    response = client.get(f"{API}/resources", HTTP_AUTHORIZATION=bad)
    assert response.status_code == 401 and response["Content-Type"].startswith("application/problem+json")
