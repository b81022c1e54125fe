"""DCAT-AP export of published catalogue entries as JSON-LD and Turtle (no RDF library needed).

Each published version becomes a ``dcat:Dataset`` (the mapping from the GB/T 21063 / 编制指南
fields is the table in docs/catalog.md) and the whole visible catalogue a ``dcat:Catalog``. The
graph is built once as nested JSON-LD nodes (compact form, prefixes in ``@context``); the Turtle
writer walks the same nodes, so both serializations always state the same triples.

IRIs are stable and built from ``settings.SITE_URL``: a dataset is
``<site>/api/v1/catalog/resources/<key>`` where ``key`` is the resource code with ``/`` written as
``-`` (``101001000-000001``); classification concepts ``<site>/api/v1/catalog/classes/<code>``;
departments ``<site>/api/v1/catalog/publishers/<department code>``. dgov's own terms (sharing type,
conditions and mode, item length) live in the ``dgov:`` namespace ``urn:dgov:ns:catalog:``.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from dgov.catalog.models import InformationResource, OpenType, SharingType

__all__ = ["CONTEXT", "catalog_document", "dataset_node", "resource_key", "to_jsonld", "to_turtle"]

PREFIXES = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "adms": "http://www.w3.org/ns/adms#",
    "csvw": "http://www.w3.org/ns/csvw#",
    "dqv": "http://www.w3.org/ns/dqv#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "dgov": "urn:dgov:ns:catalog:",
}
CONTEXT = dict(PREFIXES)
EU = "http://publications.europa.eu/resource/authority/"
FREQUENCY = {
    "realtime": "UPDATE_CONT",
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "monthly": "MONTHLY",
    "quarterly": "QUARTERLY",
    "half_yearly": "BIANNUAL",
    "yearly": "ANNUAL",
    "irregular": "IRREG",
}
ACCESS_RIGHTS = {OpenType.UNCONDITIONAL: "PUBLIC", OpenType.CONDITIONAL: "RESTRICTED", OpenType.NONE: "NON_PUBLIC"}
# 编制指南 data types → XML Schema datatypes of the CSVW column.
XSD_TYPES = {
    "C": "string",
    "N": "decimal",
    "Y": "decimal",
    "D": "date",
    "T": "dateTime",
    "L": "boolean",
    "M": "string",
    "G": "base64Binary",
    "B": "double",
    "I": "integer",
    "F": "float",
}


def _site() -> str:
    """The platform's public base URL (no trailing slash)."""
    return (getattr(settings, "SITE_URL", "") or "http://localhost").rstrip("/")


def resource_key(code: str) -> str:
    """The URL form of a resource code: ``/`` becomes ``-`` so the code is one path segment."""
    return code.replace("/", "-")


def dataset_iri(code: str) -> str:
    """The IRI of a catalogue entry."""
    return f"{_site()}/api/v1/catalog/resources/{resource_key(code)}"


def _zh(text: str) -> dict:
    """A Chinese language-tagged literal."""
    return {"@value": text, "@language": "zh"}


def _typed(value: str, datatype: str) -> dict:
    """A typed literal (``xsd:date`` …)."""
    return {"@value": value, "@type": datatype}


def _label(choices, value: str) -> str:
    """The Chinese label of a choice value (labels are zh-Hans source strings)."""
    return str(dict(choices).get(value, value))


def dataset_node(snapshot: dict, *, quality_score=None) -> dict:
    """The ``dcat:Dataset`` node of one published version (GB/T 21063 → DCAT-AP, docs/catalog.md)."""
    site = _site()
    R = InformationResource
    provider = snapshot["provider"]
    classification = snapshot["classification"]
    iri = dataset_iri(snapshot["code"])
    columns = []
    for item in snapshot.get("items", []):
        column: dict[str, Any] = {
            "@type": "csvw:Column",
            "csvw:name": item["code"],
            "csvw:title": _zh(item["name"]),
            "csvw:datatype": {"@id": PREFIXES["xsd"] + XSD_TYPES.get(item["data_type"], "string")},
            "dgov:dataType": item["data_type"],
            "dgov:sharingType": {"@id": f"{PREFIXES['dgov']}sharing/{item['sharing_type']}"},
        }
        if item.get("length"):
            column["dgov:length"] = item["length"]
        if item.get("description"):
            column["dct:description"] = _zh(item["description"])
        if item.get("data_element"):
            column["dct:conformsTo"] = {"@id": f"{PREFIXES['dgov']}element/{item['data_element']}"}
        if item.get("registry") and item.get("registry_field"):
            column["dct:source"] = {
                "@id": f"{site}/api/v1/registries/{item['registry']}/schema#{item['registry_field']}"
            }
        columns.append(column)
    theme = {
        "@id": f"{site}/api/v1/catalog/classes/{classification['code']}",
        "@type": "skos:Concept",
        "skos:notation": classification["code"],
        "skos:prefLabel": _zh(classification["name"]),
        "skos:inScheme": {"@id": f"{site}/api/v1/catalog/classes"},
    }
    node: dict[str, Any] = {
        "@id": iri,
        "@type": "dcat:Dataset",
        "dct:identifier": snapshot["code"],
        "dct:title": _zh(snapshot["name"]),
        "dct:description": _zh(snapshot["summary"]),
        "dcat:theme": theme,
        "dct:type": {"@id": f"{PREFIXES['dgov']}category/{classification.get('category', '')}"},
        "dct:publisher": {
            "@id": f"{site}/api/v1/catalog/publishers/{provider['code']}",
            "@type": "foaf:Organization",
            "foaf:name": _zh(provider["name"]),
            "dct:identifier": snapshot.get("provider_code") or provider.get("uscc", ""),
        },
        "dct:issued": _typed(snapshot["published_on"], "xsd:date"),
        "dct:modified": _typed(snapshot["published_at"], "xsd:dateTime"),
        "owl:versionInfo": str(snapshot["version"]),
        "dct:accrualPeriodicity": {"@id": f"{EU}frequency/{FREQUENCY.get(snapshot['update_cycle'], 'UNKNOWN')}"},
        "dct:accessRights": {"@id": f"{EU}access-right/{ACCESS_RIGHTS.get(snapshot['open_type'], 'NON_PUBLIC')}"},
        "dct:language": {"@id": f"{EU}language/ZHO"},
        "dgov:sharingType": {"@id": f"{PREFIXES['dgov']}sharing/{snapshot['sharing_type']}"},
        "dgov:sharingTypeLabel": _zh(_label(SharingType.choices, snapshot["sharing_type"])),
        "dcat:distribution": {
            "@type": "dcat:Distribution",
            "dct:title": _zh(_label(R.Format.choices, snapshot["format"])),
            "dct:format": {"@id": f"{PREFIXES['dgov']}format/{snapshot['format']}"},
            "dcat:accessURL": {"@id": iri},
            "csvw:tableSchema": {"@type": "csvw:Schema", "csvw:column": columns},
        },
    }
    keywords = [k for k in snapshot.get("keywords", "").replace("，", ",").replace(" ", ",").split(",") if k.strip()]
    if keywords:
        node["dcat:keyword"] = [_zh(k.strip()) for k in keywords]
    if snapshot.get("format_detail"):
        node["dcat:distribution"]["dcat:mediaType"] = snapshot["format_detail"]
    if snapshot.get("sharing_conditions"):
        node["dgov:sharingConditions"] = _zh(snapshot["sharing_conditions"])
    if snapshot.get("sharing_mode"):
        node["dgov:sharingMode"] = {"@id": f"{PREFIXES['dgov']}mode/{snapshot['sharing_mode']}"}
    if snapshot.get("open_conditions"):
        node["dct:rights"] = {"@type": "dct:RightsStatement", "rdfs:label": _zh(snapshot["open_conditions"])}
    if snapshot.get("related"):
        node["dct:relation"] = [{"@id": dataset_iri(code)} for code in snapshot["related"]]
    contact = " ".join(part for part in (snapshot.get("maintainer", ""), snapshot.get("contact", "")) if part)
    if contact:
        node["dcat:contactPoint"] = {"@type": "vcard:Kind", "vcard:fn": _zh(contact)}
    if quality_score is not None:
        node["dqv:hasQualityMeasurement"] = {
            "@type": "dqv:QualityMeasurement",
            "dqv:isMeasurementOf": {"@id": f"{PREFIXES['dgov']}quality/overall"},
            "dqv:value": _typed(str(quality_score), "xsd:decimal"),
        }
    return node


def catalog_document(nodes: list[dict]) -> dict:
    """A ``dcat:Catalog`` of the given dataset nodes, as one JSON-LD document."""
    site = _site()
    catalog = {
        "@id": f"{site}/api/v1/catalog/dcat",
        "@type": "dcat:Catalog",
        "dct:title": _zh("政务信息资源目录"),
        "dct:description": _zh("本平台已发布的政务信息资源目录（GB/T 21063），按 DCAT-AP 表示。"),
        "dct:language": {"@id": f"{EU}language/ZHO"},
        "foaf:homepage": {"@id": f"{site}/workbench/catalog/"},
        "dcat:dataset": nodes,
    }
    return {"@context": CONTEXT, **catalog}


def to_jsonld(node: dict) -> str:
    """A node (or catalogue document) as JSON-LD text; a bare node gets the ``@context``."""
    document = node if "@context" in node else {"@context": CONTEXT, **node}
    return json.dumps(document, ensure_ascii=False, indent=2)


# --- Turtle ---------------------------------------------------------------------------------------------


def _escape(text: str) -> str:
    """A Turtle string body (STRING_LITERAL_QUOTE) with the required escapes."""
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return out.replace("\t", "\\t")


def _iri(value: str) -> str:
    """An IRI reference, or a prefixed name for the terms of known vocabularies."""
    if ":" in value and not value.startswith(("http:", "https:", "urn:")):
        prefix = value.split(":", 1)[0]
        if prefix in PREFIXES:
            return value
    for ch in '<>"{}|^`\\ ':
        value = value.replace(ch, f"%{ord(ch):02X}")
    return f"<{value}>"


def _literal(value) -> str:
    """A Turtle literal for a JSON-LD value (string, number, boolean, value object)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        text = f'"{_escape(str(value["@value"]))}"'
        if "@language" in value:
            return f"{text}@{value['@language']}"
        if "@type" in value:
            return f"{text}^^{_iri(value['@type'])}"
        return text
    return f'"{_escape(str(value))}"'


class _Turtle:
    """Writes nested JSON-LD nodes as Turtle: named nodes as subject blocks, anonymous ones inline as ``[ … ]``."""

    def __init__(self):
        self.blocks: list[str] = []
        self.pending: list[dict] = []
        self.done: set[str] = set()

    def object(self, value, indent: str) -> str:
        """The Turtle text of one object."""
        if isinstance(value, dict) and "@value" not in value:
            if "@id" in value:
                if len(value) > 1:
                    self.pending.append(value)
                return _iri(value["@id"])
            return "[\n" + self.predicates(value, indent + "    ") + f"\n{indent}]"
        return _literal(value)

    def predicates(self, node: dict, indent: str) -> str:
        """``predicate object, object ;`` lines of a node."""
        lines = []
        if "@type" in node:
            lines.append(f"{indent}a {_iri(node['@type'])}")
        for key, value in node.items():
            if key.startswith("@"):
                continue
            values = value if isinstance(value, list) else [value]
            if not values:
                continue
            objects = ", ".join(self.object(v, indent) for v in values)
            lines.append(f"{indent}{_iri(key)} {objects}")
        return " ;\n".join(lines)

    def subject(self, node: dict) -> None:
        """Write one named node as a subject block (once)."""
        if node["@id"] in self.done:
            return
        self.done.add(node["@id"])
        self.blocks.append(f"{_iri(node['@id'])}\n" + self.predicates(node, "    ") + " .")

    def run(self, roots: list[dict]) -> str:
        """Every root node and the named nodes they mention."""
        self.pending.extend(roots)
        while self.pending:
            self.subject(self.pending.pop(0))
        header = "\n".join(f"@prefix {p}: <{iri}> ." for p, iri in PREFIXES.items())
        return header + "\n\n" + "\n\n".join(self.blocks) + "\n"


def to_turtle(node: dict) -> str:
    """A node (or a catalogue document, whose datasets become their own blocks) as Turtle text."""
    root = {k: v for k, v in node.items() if k != "@context"}
    return _Turtle().run([root])
