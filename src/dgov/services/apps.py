"""App configuration of one-stop government services (一网通办)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


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

    def seed_demo(self, *, province_code: str, seed: int) -> str:
        """Hook of `dgov demo`: the demo service catalogue, bundles and implementations (idempotent)."""
        from dgov.services import demo

        return demo.seed(province_code=province_code, seed=seed)
