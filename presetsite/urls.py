from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from presets.pages import models_page

urlpatterns = [
    path("", models_page, name="models-page"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/presets/", include("downloads.urls")),
    path("api/presets/", include("presets.urls")),
]
