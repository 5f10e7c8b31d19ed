"""Pages of the intranet and the CA's public files. The gateway itself runs in its own
processes (``gateway``); calls sent here are redirected to it."""

from django.urls import path

from sahab.exchange import views

app_name = "exchange"

urlpatterns = [
    path("r1/<path:target>", views.to_gateway, name="gateway"),
    path("listClients", views.to_gateway, name="list_clients"),
    path("monitoring/", views.monitoring, name="monitoring"),
    path("registry/", views.registry, name="registry"),
    path("registry/<slug:action>", views.registry_action, name="registry_action"),
    path("ca.pem", views.ca_certificate, name="ca_certificate"),
    path("ca.crl", views.ca_revocation_list, name="ca_revocation_list"),
    path("gateway.pem", views.gateway_certificate, name="gateway_certificate"),
]
