from django.urls import path

from disk import views

urlpatterns = [
    path("", views.storage_json, name="storage-api"),
    path("cleanup", views.cleanup, name="storage-cleanup"),
]
