"""Officials' data quality pages under /workbench/quality/."""

from django.urls import path

from dgov.quality import views

app_name = "quality"

urlpatterns = [
    path("", views.index, name="index"),
    path("rules/upload/", views.upload, name="upload"),
    path("rules/<str:code>/toggle/", views.toggle, name="toggle"),
    path("r/<str:code>/", views.registry, name="registry"),
    path("r/<str:code>/run/", views.run_now, name="run_now"),
    path("runs/<int:run_id>/", views.run, name="run"),
    path("d/<str:code>/", views.department, name="department"),
    path("trends/", views.overview, name="trends"),
    path("orders/", views.orders, name="orders"),
    path("orders/<str:code>/", views.order, name="order"),
    path("orders/<str:code>/answer/", views.order_answer, name="order_answer"),
    path("orders/<str:code>/recheck/", views.order_recheck, name="order_recheck"),
    path("orders/<str:code>/cancel/", views.order_cancel, name="order_cancel"),
]
