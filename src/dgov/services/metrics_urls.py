"""URLs of the service metrics dashboard and supervision pages, included into the ``services`` namespace."""

from django.urls import path

from dgov.services import metrics_views

urlpatterns = [
    path("workbench/services/metrics/", metrics_views.dashboard, name="metrics"),
    path("workbench/services/supervision/", metrics_views.supervision_list, name="supervision"),
    path("workbench/services/supervision/<str:number>/supervise/", metrics_views.supervise, name="supervise"),
]
