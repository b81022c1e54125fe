"""Officials' sharing and exchange pages under /workbench/exchange/."""

from django.urls import path

from dgov.exchange import subscription_views, views

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
    path("subscriptions/", subscription_views.index, name="subscriptions"),
    path("subscriptions/<int:pk>/", subscription_views.detail, name="subscription"),
    path("subscriptions/<int:pk>/change/", subscription_views.change, name="subscription_change"),
    path("subscriptions/<int:pk>/deliveries/<str:uid>/retry/", subscription_views.retry, name="delivery_retry"),
]
