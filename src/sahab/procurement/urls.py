from django.urls import path

from sahab.procurement import views

app_name = "procurement"

urlpatterns = [
    path("", views.tenders, name="tenders"),
    path("manage/", views.manage, name="manage"),
    path("red-flags/", views.red_flags, name="red_flags"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("<str:reference>/", views.tender, name="tender"),
    path("<str:reference>/documents/<int:document_id>", views.document, name="document"),
    path("<str:reference>/<slug:action>/", views.tender_action, name="action"),
]
