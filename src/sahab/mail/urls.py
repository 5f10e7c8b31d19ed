"""Pages of the mail pillar under /mail/."""

from django.urls import path

from sahab.mail import admin_views, views

app_name = "mail"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("box/<int:pk>/compose/", views.compose, name="compose"),
    path("box/<int:pk>/<str:folder>/", views.folder, name="folder"),
    path("box/<int:pk>/<str:folder>/<str:key>/", views.message, name="message"),
    path("box/<int:pk>/<str:folder>/<str:key>/part/<int:index>", views.part, name="part"),
    path("box/<int:pk>/<str:folder>/<str:key>/delete", views.delete, name="delete"),
    path("letters/", views.letters_page, name="letters"),
    path("letters/<int:pk>/", views.letter_page, name="letter"),
    path("letters/<int:pk>/receipt/<slug:kind>.txt", views.receipt_download, name="receipt"),
    path("receipts/key", views.receipts_key, name="receipts_key"),
    path("receipts/verify", views.receipts_verify, name="receipts_verify"),
    path("address-book/", views.address_book, name="address_book"),
    path("settings/", views.mail_settings, name="settings"),
    path("settings/vacation", views.vacation, name="vacation"),
    path("notices/", views.choose_notices, name="notices"),
    path("admin/", admin_views.domains, name="admin"),
    path("admin/<str:name>/", admin_views.domain, name="admin_domain"),
    path("admin/<str:name>/<slug:action>", admin_views.domain_action, name="admin_action"),
    path("config-v1.1.xml", views.autoconfig, name="autoconfig"),
    path("dovecot/auth-policy", views.dovecot_auth_policy, name="dovecot_auth_policy"),
    path("dovecot/events", views.dovecot_events, name="dovecot_events"),
]
