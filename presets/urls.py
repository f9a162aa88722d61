from django.urls import path

from presets import views

urlpatterns = [
    path("", views.preset_list, name="preset-list"),
    path("categories", views.category_list, name="preset-categories"),
    path("refresh", views.refresh, name="preset-refresh"),
    path("<str:preset_id>", views.preset_detail, name="preset-api-detail"),
]
