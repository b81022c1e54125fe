"""The second login step and the account console (账号与安全)."""

from django.urls import path

from dgov.identity import realname_views, views

app_name = "identity"

urlpatterns = [
    path("login/verify/", views.login_verify, name="login_verify"),
    path("login/enrol/", views.login_enrol, name="login_enrol"),
    path("account/", views.account, name="account"),
    path("account/reauth/", views.reauth, name="reauth"),
    path("account/password/", views.password, name="password"),
    path("account/phone/", views.phone, name="phone"),
    path("account/mfa/", views.mfa, name="mfa"),
    path("account/realname/", realname_views.realname_page, name="realname"),
    path("account/sessions/<int:session_id>/revoke/", views.revoke_session, name="revoke_session"),
    path("account/sessions/revoke-others/", views.revoke_other_sessions, name="revoke_other_sessions"),
    path("account/sessions/revoke-all/", views.revoke_all_sessions, name="revoke_all_sessions"),
]
