from django.urls import path

from sahab.procurement import official_views, views

app_name = "procurement"

urlpatterns = [
    path("", views.tenders, name="tenders"),
    path("buyers/", views.tender_buyers, name="tender_buyers"),
    path("manage/", views.manage, name="manage"),
    path("red-flags/", views.red_flags, name="red_flags"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("documents/ca.pem", official_views.certificate_authority, name="official_ca"),
    path("documents/<int:pk>/verify", official_views.document, name="official_document"),
    path("documents/<int:pk>/pdf", official_views.document_pdf, name="official_document_pdf"),
    path("<str:reference>/", views.tender, name="tender"),
    path("<str:reference>/documents/<int:document_id>", views.document, name="document"),
    path("<str:reference>/<slug:action>/", views.tender_action, name="action"),
]
