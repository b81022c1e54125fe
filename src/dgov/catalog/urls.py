"""Officials' catalogue pages under /workbench/catalog/."""

from django.urls import path

from dgov.catalog import views

app_name = "catalog"

# Entries are addressed by their URL key: the resource code with "/" written as "-".
urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.create, name="create"),
    path("mine/", views.mine, name="mine"),
    path("reviews/", views.reviews, name="reviews"),
    path("r/<str:key>/", views.detail, name="detail"),
    path("r/<str:key>/edit/", views.edit, name="edit"),
    path("r/<str:key>/submit/", views.submit, name="submit"),
    path("r/<str:key>/withdraw/", views.withdraw, name="withdraw"),
    path("r/<str:key>/decide/", views.decide, name="decide"),
    path("r/<str:key>/retire/", views.retire, name="retire"),
]
