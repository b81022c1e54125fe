"""Portal and workbench pages."""

from django.urls import path

from dgov.web import views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
]
