"""Demo data quality (`dgov demo`): the shipped base-library rules, two demo-only rules, one run of each (idempotent).

The synthetic province passes every base rule; the demo-only rules (``data/rules-demo.yaml``) fail
on part of it, so the first runs open a few rectification work orders (整改工单) to show.
"""

from __future__ import annotations

from pathlib import Path

from dgov.kernel.services import audit
from dgov.quality import io as quality_io
from dgov.quality import services
from dgov.quality.models import QualityRun
from dgov.registry.models import Registry

BASE_RULES = Path(__file__).parent / "data" / "rules-base.yaml"
DEMO_RULES = Path(__file__).parent / "data" / "rules-demo.yaml"


def installed_rules(path: Path = BASE_RULES) -> list[dict]:
    """The shipped rules whose registries (and referenced registries) are installed."""
    codes = set(Registry.objects.values_list("code", flat=True))
    return [
        rule
        for rule in quality_io.read_rule_file(path)
        if rule.get("registry") in codes and (rule.get("params") or {}).get("registry", rule["registry"]) in codes
    ]


def seed() -> str:
    """Load the shipped and demo-only rules of the installed registries; run each registry once if it never ran."""
    actor = audit.cli_actor()
    rules = installed_rules() + installed_rules(DEMO_RULES)
    if not rules:
        return "数据质量：未安装基础库，跳过"
    report = services.load_rules(rules, actor=actor, source=str(BASE_RULES.name))
    if not report.ok:
        return "数据质量：" + report.to_text()
    runs = []
    for code in sorted({rule["registry"] for rule in rules}):
        registry = Registry.objects.select_related("owner").get(code=code)
        if QualityRun.objects.filter(registry=registry, status=QualityRun.Status.SUCCEEDED).exists():
            continue
        run = services.run_registry(registry, actor=actor)
        runs.append(f"{code} {run.score if run.score is not None else '—'} {run.grade}")
    return f"数据质量：{report.to_text()} 检查：{'；'.join(runs) or '已有结果'}"
