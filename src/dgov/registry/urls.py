"""Officials' registry pages under /workbench/registries/."""

from django.urls import path

from dgov.registry import views

app_name = "registry"

# Registry codes contain dots (population.person), so they are matched as plain path segments;
# the fixed "corrections/" prefix comes first so it is never taken for a registry code.
urlpatterns = [
    path("", views.registry_list, name="index"),
    path("corrections/", views.corrections, name="corrections"),
    path("corrections/<int:pk>/decide/", views.decide_correction, name="decide"),
    path("<str:code>/", views.browse, name="browse"),
    path("<str:code>/schema/", views.schema_versions, name="schema"),
    path("<str:code>/records/<uuid:uid>/", views.record, name="record"),
    path("<str:code>/records/<uuid:uid>/edit/", views.edit_record, name="edit"),
    path("<str:code>/records/<uuid:uid>/correct/", views.correct_record, name="correct"),
]
