from django.urls import path

from presets import views

urlpatterns = [
    path("categories", views.category_list, name="preset-categories"),
    path("refresh", views.refresh, name="preset-refresh"),
]
