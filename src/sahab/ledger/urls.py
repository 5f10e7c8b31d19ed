from django.urls import path, re_path

from sahab.ledger import views

app_name = "ledger"

urlpatterns = [
    path("", views.home, name="home"),
    path("view/<int:index>/", views.entry_page, name="entry_page"),
    path("checkpoint", views.checkpoint, name="checkpoint"),
    path("key", views.key, name="key"),
    path("status", views.status, name="status"),
    path("checkpoint/<int:size>/cosignatures", views.add_cosignature, name="add_cosignature"),
    re_path(r"^tile/entries/(?P<path>.+)$", views.entry_bundle, name="entry_bundle"),
    re_path(r"^tile/(?P<level>\d+)/(?P<path>.+)$", views.tile, name="tile"),
    path("proof/inclusion", views.inclusion_proof, name="inclusion_proof"),
    path("proof/consistency", views.consistency_proof, name="consistency_proof"),
    path("entries", views.search, name="search"),
    path("entries/<int:index>", views.entry, name="entry"),
    path("entries/<int:index>/raw", views.entry_raw, name="entry_raw"),
    path("entries/<int:index>/receipt", views.receipt, name="receipt"),
    path("promises/<int:pending>", views.promise, name="promise"),
    path("witness/add-checkpoint", views.witness_add_checkpoint, name="witness"),
]
