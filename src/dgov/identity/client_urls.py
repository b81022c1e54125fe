"""API client administration pages (接口客户端管理) under /workbench/api-clients/."""

from django.urls import path

from dgov.identity import client_views

app_name = "api_clients"

urlpatterns = [
    path("", client_views.client_list, name="index"),
    path("new/", client_views.client_create, name="create"),
    path("<slug:client_id>/", client_views.client_detail, name="detail"),
    path("<slug:client_id>/scopes/", client_views.client_scopes, name="scopes"),
    path("<slug:client_id>/rotate/", client_views.client_rotate, name="rotate"),
    path("<slug:client_id>/deactivate/", client_views.client_deactivate, name="deactivate"),
]
