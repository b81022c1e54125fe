"""URLs of the OpenID Connect provider: discovery at the issuer root, endpoints under /oidc/, pages."""

from django.urls import path

from dgov.oidc import broker_views, views

app_name = "oidc"

urlpatterns = [
    path(".well-known/openid-configuration", views.discovery, name="discovery"),
    path("oidc/jwks", views.jwks, name="jwks"),
    path("oidc/authorize", views.authorize, name="authorize"),
    path("oidc/consent", views.consent, name="consent"),
    path("oidc/token", views.token, name="token"),
    path("oidc/userinfo", views.userinfo, name="userinfo"),
    path("oidc/revoke", views.revoke, name="revoke"),
    path("oidc/introspect", views.introspect, name="introspect"),
    path("oidc/logout", views.end_session, name="end_session"),
    path("account/authorizations/", views.my_authorizations, name="my_authorizations"),
    # Identity brokering: log in with an upstream provider; linked logins on the account console.
    path("login/upstream/<slug:slug>/", broker_views.upstream_login, name="upstream_login"),
    path("login/upstream/<slug:slug>/callback/", broker_views.upstream_callback, name="upstream_callback"),
    path("account/linked-logins/<int:link_id>/", broker_views.linked_login_action, name="linked_login_action"),
    path("workbench/oidc/clients/", views.client_list, name="client_list"),
    path("workbench/oidc/clients/new/", views.client_create, name="client_create"),
    path("workbench/oidc/clients/<slug:client_id>/", views.client_detail, name="client_detail"),
    path("workbench/oidc/clients/<slug:client_id>/rotate/", views.client_rotate, name="client_rotate"),
    path("workbench/oidc/clients/<slug:client_id>/deactivate/", views.client_deactivate, name="client_deactivate"),
]
