from django.urls import path

from downloads import views

urlpatterns = [
    path("", views.preset_list, name="preset-list"),
    path("queue/status", views.queue_status, name="queue-status"),
    path("<str:preset_id>", views.preset_detail, name="preset-api-detail"),
    path("<str:preset_id>/install", views.install, name="preset-install"),
    path("<str:preset_id>/pause", views.pause, name="preset-pause"),
    path("<str:preset_id>/resume", views.resume, name="preset-resume"),
    path("<str:preset_id>/cancel", views.cancel, name="preset-cancel"),
    path("<str:preset_id>/retry", views.retry, name="preset-retry"),
    path("<str:preset_id>/verify", views.verify, name="preset-verify"),
]
