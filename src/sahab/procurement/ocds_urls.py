from django.urls import path

from sahab.procurement import ocds_views

app_name = "ocds"

urlpatterns = [
    path("", ocds_views.index, name="index"),
    path("releases", ocds_views.releases, name="releases"),
    path("records", ocds_views.records, name="records"),
    path("records/<str:ocid>", ocds_views.record, name="record"),
    path("releases.json.gz", ocds_views.bulk, {"kind": "releases"}, name="bulk_releases"),
    path("records.json.gz", ocds_views.bulk, {"kind": "records"}, name="bulk_records"),
    path("extensions/<slug:name>/<str:filename>", ocds_views.extension, name="extension"),
]
