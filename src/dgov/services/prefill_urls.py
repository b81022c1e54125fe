"""URLs of the pre-fill side (the official's shared-data page), included into the ``services`` namespace."""

from django.urls import path

from dgov.services import prefill_views

urlpatterns = [
    path(
        "workbench/services/tasks/<int:task_id>/shared-data/",
        prefill_views.shared_data,
        name="task_shared_data",
    ),
]
