from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect
from django.urls import include, path

from chat.widget import widget_script
from kb.views import healthz


def home(request):
    if request.user.is_authenticated:
        return redirect("kb:documents" if request.user.is_staff else "chat:page")
    return redirect("login")


urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("oidc/", include("accounts.oidc")),  # single sign-on; answers 404 unless OIDC_RP_CLIENT_ID is set
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("portal.api")),
    path("accounts/", include("accounts.urls")),
    path("widget.js", widget_script, name="widget-script"),
    path("", include("kb.urls")),
    path("", include("ingestion.urls")),
    path("", include("chat.urls")),
    path("health/", include("health.urls")),
]
