"""App configuration of one-stop government services (一网通办)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def department_official(user) -> bool:
    """Menu permission of the task inbox: an official who belongs to a department (as the inbox view requires)."""
    return bool(
        user is not None
        and user.is_authenticated
        and getattr(user, "kind", "") == "official"
        and getattr(user, "department_id", None) is not None
    )


class ServicesConfig(AppConfig):
    """一网通办: service items and guides, applications on BPMN processes, one-window acceptance."""

    name = "dgov.services"
    label = "services"
    verbose_name = _("一网通办")

    def ready(self) -> None:
        """Register the portal and workbench menu entries."""
        from dgov.web import navigation

        navigation.register("portal", "services", _("办事服务"), "services:index", order=20)
        navigation.register(
            "workbench",
            "service_items",
            _("事项目录"),
            "services:items",
            permission=navigation.officials_only,
            order=22,
        )
        # The task inbox (待办任务) had no menu entry: officials could not find it from the workbench.
        navigation.register(
            "workbench", "service_tasks", _("待办任务"), "services:inbox", permission=department_official, order=20
        )
        # 一件事: connects the receiver that completes a bundle case when its last member closes.
        from dgov.services import bundles  # noqa: F401

        # Result delivery (决定书, e-licence) when an application closes; 好差评 in the workbench menu.
        from dgov.services.applications import application_closed
        from dgov.services.results import deliver

        application_closed.connect(deliver, dispatch_uid="dgov.services.results.deliver")
        navigation.register(
            "workbench",
            "service_ratings",
            _("好差评"),
            "services:ratings",
            permission=navigation.officials_only,
            order=24,
        )
        # Service metrics (服务指标) and supervision of overdue applications (督办).
        navigation.register(
            "workbench",
            "service_metrics",
            _("服务指标"),
            "services:metrics",
            permission=navigation.officials_only,
            order=25,
        )
        navigation.register(
            "workbench",
            "service_supervision",
            _("办件督办"),
            "services:supervision",
            permission=navigation.officials_only,
            order=26,
        )

    def seed_demo(self, *, province_code: str, seed: int) -> str:
        """Hook of `dgov demo`: the demo service catalogue, bundles and implementations (idempotent)."""
        from dgov.services import demo

        return demo.seed(province_code=province_code, seed=seed)
