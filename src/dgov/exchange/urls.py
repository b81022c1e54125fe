"""Officials' sharing and exchange pages under /workbench/exchange/."""

from django.urls import path

from dgov.exchange import dataservice_views, federation_views, subscription_views, views

app_name = "exchange"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/<str:key>/", views.new_request, name="new"),
    path("inbox/", views.inbox, name="inbox"),
    path("requests/<int:pk>/decide/", views.decide, name="decide"),
    path("requests/<int:pk>/withdraw/", views.withdraw, name="withdraw"),
    path("grants/<int:pk>/revoke/", views.revoke, name="revoke"),
    path("log/", views.log_search, name="log"),
    path("log/<int:seq>/receipt.json", views.receipt, name="receipt"),
    path("monitor/", views.monitor, name="monitor"),
    path("subscriptions/", subscription_views.index, name="subscriptions"),
    path("subscriptions/<int:pk>/", subscription_views.detail, name="subscription"),
    path("subscriptions/<int:pk>/change/", subscription_views.change, name="subscription_change"),
    path("subscriptions/<int:pk>/deliveries/<str:uid>/retry/", subscription_views.retry, name="delivery_retry"),
    path("services/", dataservice_views.index, name="services"),
    path("services/<int:pk>/", dataservice_views.detail, name="service"),
    path("services/<int:pk>/change/", dataservice_views.change, name="service_change"),
    path("federation/", federation_views.catalogue, name="federation"),
    path("federation/<str:peer>/<str:key>/", federation_views.new_request, name="federation_new"),
]
