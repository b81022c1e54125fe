"""The second login step and the account console (账号与安全)."""

from django.urls import path

from dgov.identity import agent_views, realname_views, views, window_views

app_name = "identity"

urlpatterns = [
    path("login/verify/", views.login_verify, name="login_verify"),
    path("login/enrol/", views.login_enrol, name="login_enrol"),
    path("account/", views.account, name="account"),
    path("account/reauth/", views.reauth, name="reauth"),
    path("account/password/", views.password, name="password"),
    path("account/password/set/", views.password_set, name="password_set"),
    path("account/phone/", views.phone, name="phone"),
    path("account/mfa/", views.mfa, name="mfa"),
    path("account/realname/", realname_views.realname_page, name="realname"),
    path("workbench/identity/in-person/", window_views.in_person, name="in_person"),
    path("account/agents/", agent_views.agents_page, name="agents"),
    path("account/agents/grant/", agent_views.grant, name="agent_grant"),
    path("account/agents/<int:pk>/revoke/", agent_views.revoke, name="agent_revoke"),
    path("account/agencies/", agent_views.agencies_page, name="agencies"),
    path("account/agencies/<int:pk>/act/", agent_views.act, name="agency_act"),
    path("account/agencies/<int:pk>/renounce/", agent_views.revoke, name="agency_renounce"),
    path("account/agencies/stop/", agent_views.stop, name="agency_stop"),
    path("account/sessions/<int:session_id>/revoke/", views.revoke_session, name="revoke_session"),
    path("account/sessions/revoke-others/", views.revoke_other_sessions, name="revoke_other_sessions"),
    path("account/sessions/revoke-all/", views.revoke_all_sessions, name="revoke_all_sessions"),
]
