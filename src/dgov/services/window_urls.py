"""URLs of one-window acceptance (一窗受理) and material downloads, included into the ``services`` namespace.

Importing this module also registers the workbench menu entry 窗口受理 (window staff only).
"""

from django.urls import path
from django.utils.translation import gettext_lazy as _

from dgov.services import material_views, window, window_views
from dgov.web import navigation

urlpatterns = [
    path("workbench/services/window/", window_views.home, name="window"),
    path("workbench/services/window/items/<str:code>/", window_views.accept, name="window_accept"),
    path("workbench/services/window/applications/", window_views.window_list, name="window_list"),
    path("workbench/services/window/applications/<str:number>/receipt/", window_views.receipt, name="window_receipt"),
    path(
        "workbench/services/window/applications/<str:number>/correction/",
        window_views.correction,
        name="window_correction",
    ),
    path(
        "workbench/services/window/applications/<str:number>/hand-over/",
        window_views.hand_over,
        name="window_hand_over",
    ),
    path(
        "workbench/services/applications/<str:number>/materials/<int:material_id>/",
        material_views.official_download,
        name="material",
    ),
    path("services/my/<str:number>/materials/<int:material_id>/", material_views.my_download, name="my_material"),
]

navigation.register(
    "workbench", "service_window", _("窗口受理"), "services:window", permission=window.may_accept_at_window, order=21
)
