from django.urls import path

from sahab.directory import views

app_name = "directory"

urlpatterns = [
    path("accounts/login/", views.login_view, name="login"),
    path("accounts/login/code/", views.login_totp_view, name="login_totp"),
    path("accounts/logout/", views.logout_view, name="logout"),
    path("accounts/", views.home, name="home"),
    path("accounts/password/", views.password_view, name="password"),
    path("accounts/sessions/end/", views.end_sessions_view, name="end_sessions"),
    path("accounts/password/reset/", views.password_reset_view, name="password_reset"),
    path("accounts/password/reset/<str:uidb64>/<str:token>/",
         views.password_reset_confirm_view, name="password_reset_confirm"),
    path("accounts/two-factor/", views.totp_setup_view, name="totp"),
    path("accounts/tokens/", views.create_token_view, name="token_create"),
    path("accounts/tokens/<int:token_id>/revoke/", views.revoke_token_view, name="token_revoke"),
    path("accounts/register-company/", views.register_company_view, name="register_company"),
    path("directory/", views.administrations_view, name="administrations"),
    path("directory/companies/", views.companies_view, name="companies"),
    path("directory/<str:code>/", views.administration_view, name="administration"),
    path("directory/<str:code>/manage/", views.manage_view, name="manage"),
    path("directory/<str:code>/manage/administrations", views.create_administration_view,
         name="create_administration"),
    path("directory/<str:code>/manage/agents", views.create_agent_view, name="create_agent"),
    path("directory/agents/<str:username>/manage/", views.manage_agent_view,
         name="manage_agent"),
]
