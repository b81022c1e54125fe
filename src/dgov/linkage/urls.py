"""Officials' entity-resolution pages under /workbench/linkage/."""

from django.urls import path

from dgov.linkage import views

app_name = "linkage"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.new, name="new"),
    path("runs/<int:run_id>/", views.run, name="run"),
    path("runs/<int:run_id>/golden/", views.golden, name="golden"),
    path("runs/<int:run_id>/golden/<int:cluster>/", views.golden_record, name="golden_record"),
]
