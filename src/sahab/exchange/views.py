"""Public files of the exchange CA: its certificate and its revocation list."""

from django.http import HttpResponse

from sahab.exchange import ca, services


def ca_certificate(request) -> HttpResponse:
    ca.ensure_ca()
    return HttpResponse(ca.ca_cert_path().read_bytes(), content_type="application/x-pem-file")


def ca_revocation_list(request) -> HttpResponse:
    response = HttpResponse(services.revocation_list(), content_type="application/pkix-crl")
    response["Cache-Control"] = "max-age=300"
    return response
