"""URLs of application pages (办件), included into the ``services`` namespace by ``dgov.services.urls``."""

from django.urls import path

from dgov.services import process_views

urlpatterns = [
    path("services/items/<str:code>/apply/", process_views.apply, name="apply"),
    path("services/my/", process_views.my_applications, name="my_applications"),
    path("services/my/<str:number>/", process_views.my_application, name="my_application"),
    path("workbench/services/tasks/", process_views.inbox, name="inbox"),
    path("workbench/services/tasks/<int:task_id>/", process_views.task, name="task"),
    path("workbench/services/tasks/<int:task_id>/action/", process_views.task_action, name="task_action"),
]
