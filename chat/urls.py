from django.urls import path

from . import views

app_name = "chat"

urlpatterns = [
    path("chat/", views.chat_page, name="page"),
    path("chat/<int:conversation_id>/", views.chat_page, name="conversation"),
    path("chat/ask", views.ask, name="ask"),
    path("chat/messages/<int:message_id>/stop", views.stop, name="stop"),
    path("chat/messages/<int:message_id>/feedback", views.feedback, name="feedback"),
]
