from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from sahab.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("companies/", views.companies, name="companies"),
    path("companies/<str:slug>/", views.company, name="company"),
    path("buyers/<str:code>/", views.buyer, name="buyer"),
    path("alerts/", views.follow, name="follow"),
    path("alerts/feed.atom", views.feed, name="feed"),
    path("alerts/confirm/<str:token>/", views.confirm, name="confirm"),
    # one-click unsubscribe (RFC 8058): mail clients POST without a form of ours
    path("alerts/unsubscribe/<str:token>/", csrf_exempt(views.unsubscribe), name="unsubscribe"),
]
