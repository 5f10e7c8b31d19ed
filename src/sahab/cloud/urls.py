from django.urls import path

from sahab.cloud import views

app_name = "cloud"

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("plans/<int:plan_id>/order", views.order_plan, name="order_plan"),
    path("orders/", views.orders, name="orders"),
    path("orders/<str:number>/", views.order, name="order"),
    path("orders/<str:number>/<slug:action>", views.order_action, name="order_action"),
    path("providers/", views.providers, name="providers"),
    path("providers/<int:provider_id>/", views.provider, name="provider"),
    path("providers/<int:provider_id>/<slug:action>", views.provider_action,
         name="provider_action"),
    path("provider/", views.my_provider, name="my_provider"),
    path("provider/<slug:action>", views.my_provider_action, name="my_provider_action"),
    path("attestations/<int:attestation_id>/document", views.attestation_document,
         name="attestation_document"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/budget", views.set_budget, name="set_budget"),
    path("focus.csv", views.focus_export, name="focus_export"),
]
