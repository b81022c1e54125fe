"""Outbox subscribers of the OIDC provider (found by ``dgov.kernel.services.events.autodiscover``).

When an account's real-name level drops (``identity.realname.lowered``: the population library
reports the person deceased, deletes the record or changes the ID number), the grants the user
made keep running — the login itself is still the user's — but what they assert falls with the
level: each live grant's ``acr`` (also of grants the user made as an enterprise's agent) is
recomputed from the account's level and the grant's ``amr``, so the id_tokens issued on refresh
carry the lower value. A grant of a client whose registered
minimum level (``Client.min_acr``) the account no longer reaches is revoked with its tokens.
Access tokens already issued keep their ``acr`` claim until they expire (minutes).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q

from dgov.kernel.services import audit
from dgov.kernel.services.events import subscribe
from dgov.oidc.models import Grant
from dgov.oidc.services.authorization import acr_level, acr_of
from dgov.oidc.services.tokens import revoke_grant

ACTOR = "system:realname-recheck"
# Grants made by an agent for an enterprise (Grant.agency) fall with the agent's level too.
_HAS_AGENCY = any(f.name == "agency" for f in Grant._meta.get_fields())


@subscribe("identity.realname.lowered", name="oidc.grants.lower_acr")
def lower_grant_acr(event) -> None:
    """Lower the ``acr`` of the user's live grants to the account's new level; revoke those below a client's minimum."""
    user = get_user_model().objects.filter(pk=(event.payload or {}).get("user")).first()
    if user is None:
        return
    mine = Q(user=user)
    if _HAS_AGENCY:
        mine |= Q(agency__agent=user)  # grants the user made as an agent acting for an enterprise
    grants = Grant.objects.select_for_update(of=("self",)).select_related("client", "user")
    for grant in grants.filter(mine, revoked_at__isnull=True).order_by("pk"):
        agency = getattr(grant, "agency", None) if _HAS_AGENCY else None
        new_acr = (
            acr_of(grant.user, grant.amr or [], agency) if agency is not None else acr_of(grant.user, grant.amr or [])
        )
        new_level = acr_level(new_acr) or 1
        old_level = acr_level(grant.acr)
        if new_level < (acr_level(grant.client.min_acr) or 1):
            revoke_grant(grant, reason="acr_lowered", actor=ACTOR)
            continue
        if old_level is None or new_level >= old_level:
            continue
        Grant.objects.filter(pk=grant.pk).update(acr=new_acr)
        audit.record(
            "oidc.grant.acr_lower",
            actor=ACTOR,
            target=("oidc.grant", grant.pk, f"grant {grant.pk}"),
            detail={"client_id": grant.client.client_id, "from": grant.acr, "to": new_acr, "event": event.pk},
        )
