"""The citizen's own pages of the registry app, under /account/ (the account console's neighbourhood)."""

from django.urls import path

from dgov.registry import views

app_name = "my_data"

urlpatterns = [
    path("reads/", views.my_reads, name="reads"),
]
