"""URLs of results (决定书 download) and 好差评 (rating, ratings and rectification orders), ``services`` namespace."""

from django.urls import path

from dgov.services import result_views

urlpatterns = [
    path("services/my/<str:number>/result.pdf", result_views.result_pdf, name="result_pdf"),
    path("services/my/<str:number>/rating/", result_views.rate, name="rate"),
    path("workbench/services/ratings/", result_views.ratings_list, name="ratings"),
    path(
        "workbench/services/ratings/<str:code>/<str:action>/",
        result_views.rectification_action,
        name="rectification_action",
    ),
]
