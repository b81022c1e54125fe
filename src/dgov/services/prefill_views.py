"""The apply page's pre-fill and materials part (used by :func:`dgov.services.process_views.apply`), and
the official's page of an application's shared data (免提交材料).

Thin: it parses the request (the consent id carried in a hidden field, uploaded files, the
"use my e-licence" checkboxes), calls :mod:`dgov.services.prefill` and builds the template context
(the consent box, the source beside each pre-filled field, one row per guide material).
"""

from __future__ import annotations

from functools import cached_property

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext

from dgov.services import applications, materials, prefill, sources
from dgov.services.models import GuideMaterial

__all__ = ["ApplyPage", "licence_checkbox", "shared_data"]


def licence_checkbox(material: GuideMaterial) -> str:
    """The name of the "use my e-licence" checkbox of a licence material."""
    return f"use_licence_{material.pk}"


class ApplyPage:
    """The pre-fill state of one request to the apply page: offer, consent, sources, licences, materials."""

    def __init__(self, request, item):
        self.request, self.item, self.user = request, item, request.user
        self.consent = None
        self.sources: dict[str, str] = {}
        self.licences: dict = {}
        self.guide = list(item.materials.select_related("licence_type").order_by("position", "id"))

    @cached_property
    def _infos(self) -> dict:
        """The registries' descriptions, built once per request for every library label on the page."""
        return sources.registry_infos()

    # --- actions -------------------------------------------------------------------------------

    def grant(self) -> dict:
        """The applicant consents: pre-fill values (the reads logged), or {} with a message when refused."""
        try:
            result = prefill.grant_and_prefill(self.item, user=self.user)
        except PermissionDenied as exc:
            messages.error(self.request, str(exc))
            return {}
        self.consent, self.sources, self.licences = result.consent, result.sources, result.licences
        if result.values or result.licences:
            messages.success(self.request, gettext("已按您的授权自动填写，请核对；来自基础库的内容可以修改。"))
        for label in result.not_found:
            messages.info(self.request, gettext("未在%(source)s中找到您的信息，请手动填写。") % {"source": label})
        return dict(result.values)

    def submit(self, values: dict):
        """Submit the form with its materials (and the consent, when one is carried); ValidationError per field."""
        consent_id = self.request.POST.get("prefill_consent", "")
        if consent_id:
            self.consent = prefill.consent_for(self.user, self.item, consent_id)
        uploads = {}
        for material in self.guide:
            upload = self.request.FILES.get(prefill.material_field(material))
            if upload is not None:
                uploads[material.pk] = prefill.Upload(
                    file_name=upload.name or "",
                    content_type=upload.content_type or "",
                    data=upload.read(materials.max_bytes() + 1),
                )
        use = {m.pk for m in self.guide if self.request.POST.get(licence_checkbox(m)) == "on"}
        try:
            return prefill.submit_with_materials(
                self.item,
                applicant=self.user,
                data=values,
                actor=self.user,
                uploads=uploads,
                use_licence=use,
                consent=self.consent,
            )
        except ValidationError:
            if self.consent is not None:  # the form comes back: its sources and licences as they were offered
                self._restore_sources()
                self.licences = prefill.usable_licences(self.item, self.user)
            raise

    def _restore_sources(self) -> None:
        """The source labels of the consent's pre-filled fields (for the form re-rendered after an error)."""
        cache: dict = {}
        for entry in self.consent.fields_filled or []:
            try:
                source = sources.parse_source(entry.get("source"))
            except ValueError:
                continue
            if source.is_licence:
                licence_type = sources.resolve_licence_type(source.licence_type, cache=cache)
                self.sources[entry["field"]] = str(licence_type.name) if licence_type else source.licence_type
            else:
                self.sources[entry["field"]] = sources.library_label(source.registry, self._infos)

    # --- rendering -----------------------------------------------------------------------------

    def mark_sources(self, fields: list[dict]) -> list[dict]:
        """Add to each form field the source of its pre-filled value (来自人口基础库), if any."""
        for entry in fields:
            entry["source"] = self.sources.get(entry["name"], "")
        return fields

    def _rows(self, errors: dict) -> list[dict]:
        """One row per guide material: shared data (not asked), the applicant's licence (checkbox), or a file input."""
        posted = self.request.method == "POST" and self.request.POST.get("action") != "prefill"
        rows = []
        for material in self.guide:
            key = prefill.material_field(material)
            row = {
                "field": key,
                "name": material.name,
                "required": material.required,
                "notes": material.notes,
                "copies": material.copies,
                "mode": "file",
                "errors": errors.get(key, []),
            }
            if material.kind == GuideMaterial.Kind.DATA:
                row["mode"] = "data"
                row["library"] = sources.library_label(material.registry_code, self._infos) or material.source
            elif material.kind == GuideMaterial.Kind.LICENCE and material.pk in self.licences:
                licence = self.licences[material.pk]
                checkbox = licence_checkbox(material)
                row.update(
                    mode="licence",
                    checkbox=checkbox,
                    licence_name=str(licence.licence_type.name),
                    licence_number=prefill.masked_licence_number(licence),
                    checked=(self.request.POST.get(checkbox) == "on") if posted else True,
                )
            rows.append(row)
        return rows

    def context(self, errors: dict) -> dict:
        """Template context of the consent box and the materials section."""
        offer = None if self.consent is not None else prefill.prefill_offer(self.item, self.user)
        return {
            "prefill_offer": offer,
            "prefill_consent": self.consent.pk if self.consent is not None else "",
            "consent_errors": errors.get("consent", []),
            "material_rows": self._rows(errors),
            "material_errors": errors.get("material", []),
        }


@login_required
def shared_data(request, task_id: int):
    """The shared data of a task's application's 免提交 materials, read (and logged) when the official asks."""
    user = request.user
    if getattr(user, "kind", "") != "official" or getattr(user, "department_id", None) is None:
        raise PermissionDenied(gettext("待办任务仅向部门工作人员开放。"))
    found = applications.visible_task(user, task_id)
    if found is None or found.application.department_id != user.department_id:
        raise Http404
    app = found.application
    return render(
        request,
        "services/shared_data.html",
        {"task": found, "app": app, "shared_data": prefill.shared_data_for(app, user)},
    )
