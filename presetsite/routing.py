from django.urls import path

from downloads.consumers import DashboardConsumer

websocket_urlpatterns = [
    path("ws/dashboard", DashboardConsumer.as_asgi()),
]
