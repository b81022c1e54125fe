"""Officials' e-licence pages under /workbench/licences/."""

from django.urls import path

from dgov.licenses import pdf_views, trust_views, views

app_name = "licenses"

urlpatterns = [
    path("", views.index, name="index"),
    path("types/", views.types, name="types"),
    path("types/load/", views.types_load, name="types_load"),
    path("types/<str:code>/", views.type_detail, name="type"),
    path("types/<str:code>/template.csv", views.template_csv, name="template"),
    path("issue/", views.issue, name="issue"),
    path("bulk/", views.bulk_issue, name="bulk"),
    path("trust/", trust_views.trusted_issuers, name="trust"),  # 互认签发机构
    path("trust/sync/", trust_views.sync, name="trust_sync"),
    path("l/<str:identifier>/", views.licence_detail, name="licence"),
    path("l/<str:identifier>/credential.jwt", views.credential, name="credential"),
    path("l/<str:identifier>/licence.pdf", pdf_views.licence_pdf, name="pdf"),
    path("l/<str:identifier>/<str:action>/", views.licence_action, name="action"),
]
