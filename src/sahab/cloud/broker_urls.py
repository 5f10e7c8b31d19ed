"""The reference service broker's routes, under /osb/ (Open Service Broker API v2.17)."""

from django.urls import path

from sahab.cloud import broker, views

app_name = "osb"

urlpatterns = [
    path("v2/catalog", broker.catalog_view, name="catalog"),
    path("v2/service_instances/<str:instance_id>", broker.instance_view, name="instance"),
    path("v2/service_instances/<str:instance_id>/last_operation",
         broker.instance_last_operation, name="instance-last-operation"),
    path("v2/service_instances/<str:instance_id>/service_bindings/<str:binding_id>",
         broker.binding_view, name="binding"),
    path("v2/service_instances/<str:instance_id>/service_bindings/<str:binding_id>/last_operation",
         broker.binding_last_operation, name="binding-last-operation"),
    # the dashboard_url the broker hands out: the order's page on the platform
    path("dashboard/<str:instance_id>", views.osb_dashboard, name="dashboard"),
]
