"""Portal and workbench pages."""

from django.urls import path

from dgov.web import views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("divisions/", views.divisions, name="divisions"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("workbench/", views.workbench, name="workbench"),
]
