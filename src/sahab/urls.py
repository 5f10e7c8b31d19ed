from django.contrib import admin
from django.http import HttpResponseNotFound
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from sahab.api import api
from sahab.core import error_codes
from sahab.core.headers import csp_report
from sahab.core.problems import is_machine_path, problem_response
from sahab.core.views import healthz
from sahab.directory import views as directory_views
from sahab.mail import views as mail_views
from sahab.ops import views as ops_views

admin.site.site_header = "sahab"
admin.site.site_title = "sahab"

urlpatterns = [
    # the admin screens are entered through sahab's sign-in (second factor), never Django's
    path("admin/login/", directory_views.admin_login_view, name="admin_login"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("healthz", healthz, name="healthz"),
    path("problems/", error_codes.index_view, name="problems"),
    path("problems/<slug:code>", error_codes.code_view, name="problem"),
    path("csp-report", csp_report, name="csp_report"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.metrics_view, name="metrics"),
    path("ledger/", include("sahab.ledger.urls")),
    path("tenders/", include("sahab.procurement.urls")),
    path("ocds/", include("sahab.procurement.ocds_urls")),
    path("osb/", include("sahab.cloud.broker_urls")),
    path("cloud/", include("sahab.cloud.urls")),
    path("exchange/", include("sahab.exchange.urls")),
    path("mail/", include("sahab.mail.urls")),
    path(".well-known/autoconfig/mail/config-v1.1.xml", mail_views.autoconfig),
    path(".well-known/mta-sts.txt", mail_views.mta_sts_policy),
    path("autodiscover/autodiscover.xml", mail_views.autodiscover),
    path("Autodiscover/Autodiscover.xml", mail_views.autodiscover),  # Outlook's spelling
    path("", include("sahab.directory.urls")),
    path("", include("sahab.portal.urls")),
]


def handler404(request, exception=None):
    """JSON problems under the machine interfaces, the portal's page elsewhere."""
    if is_machine_path(request.path):
        return problem_response(404, "Not found", f"Nothing at {request.path}.")
    from django.shortcuts import render
    try:
        return render(request, "404.html", status=404)
    except Exception:
        return HttpResponseNotFound("Not found")


def handler500(request):
    if is_machine_path(request.path):
        return problem_response(500, "Internal error", "The platform failed; it is logged.")
    from django.views.defaults import server_error
    return server_error(request)
