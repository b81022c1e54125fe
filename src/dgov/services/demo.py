"""Demo service catalogue (`dgov demo`): items, bundles, implementations and one 三级四同 drift (idempotent).

Loads ``data/items.yaml`` (after the demo licence types it refers to), gives every item its
implementations in the demo province (:func:`dgov.services.catalogue.implement_items`), and, once,
lets one county implementation publish an outdated item name so that the drift report has a
finding to show; then runs the 三级四同 check. Bulk inserts only, so it stays quick. While there
are no applications yet, it also generates about six months of application history
(:mod:`dgov.services.demo_history`) for the metrics dashboard, the inboxes and supervision.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from dgov.kernel.services import audit
from dgov.licenses import catalogue as licence_catalogue
from dgov.services import catalogue, demo_history
from dgov.services.models import Application, ItemDrift, ItemImplementation

ACTOR = "system:demo"
#: The county implementation that publishes an outdated name in the demo (个体工商户登记 under its old name).
DRIFT_CODE = "000117002000"
DRIFT_NAME = "个体工商户开业登记"


def seed(*, province_code: str, seed: int = 0) -> str:
    """Load the demo catalogue and its implementations for the province; returns a one-line summary."""
    licence_catalogue.load_types(
        licence_catalogue.read_type_file(licence_catalogue.DEMO_TYPES),
        actor=ACTOR,
        source="demo",
        province_code=province_code,
    )
    report = catalogue.load_catalogue(
        catalogue.read_catalogue_file(catalogue.DEMO_ITEMS),
        actor=ACTOR,
        source="demo",
        province_code=province_code,
    )
    if not report.ok:
        return report.to_text()
    made = catalogue.implement_items(province_code, actor=ACTOR)
    if not ItemDrift.objects.exists():
        stale = (
            ItemImplementation.objects.filter(item__basic_code=DRIFT_CODE, level=3).order_by("division_code").first()
        )
        if stale is not None:
            with transaction.atomic():
                stale.name = DRIFT_NAME
                stale.save(update_fields=["name", "updated_at"])
                audit.record("services.implementation.demo_drift", actor=ACTOR, target=stale)
    check = catalogue.check_consistency(actor=ACTOR)
    summary = f"{report.to_text()} 实施清单新增 {made} 条。{check.to_text()}"
    # About six months of applications (办件历史) for the metrics, the inbox and supervision — once.
    if not Application.objects.exists():
        count = int(getattr(settings, "SERVICES_DEMO_HISTORY_COUNT", demo_history.DEFAULT_COUNT))
        summary += "\n" + demo_history.generate(province_code=province_code, seed=seed, count=count).to_text()
    return summary
