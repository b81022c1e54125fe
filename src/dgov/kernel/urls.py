"""Operational endpoints: liveness, readiness and Prometheus metrics."""

from django.urls import path

from dgov.kernel import views

app_name = "kernel"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
]
