"""The gateway's route, /exchange/r1/<service identifier>/<path> (X-Road REST protocol),
and the demo's two provider systems, reached only through the gateway."""

from django.urls import path

from sahab.exchange import demo_providers, gateway, views

app_name = "exchange"

urlpatterns = [
    path("r1/<path:target>", gateway.gateway, name="gateway"),
    path("monitoring/", views.monitoring, name="monitoring"),
    path("registry/", views.registry, name="registry"),
    path("registry/<slug:action>", views.registry_action, name="registry_action"),
    path("ca.pem", views.ca_certificate, name="ca_certificate"),
    path("ca.crl", views.ca_revocation_list, name="ca_revocation_list"),
    path("demo/etat-civil/personnes/<str:cin>", demo_providers.person, name="demo_person"),
    path("demo/fiscalite/attestations/<str:matricule>", demo_providers.tax_status,
         name="demo_tax_status"),
]
