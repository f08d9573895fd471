from django.urls import path

from . import views, widget

app_name = "chat"

urlpatterns = [
    path("chat/", views.chat_page, name="page"),
    path("chat/<int:conversation_id>/", views.chat_page, name="conversation"),
    path("chat/ask", views.ask, name="ask"),
    path("chat/messages/<int:message_id>/stop", views.stop, name="stop"),
    path("chat/messages/<int:message_id>/feedback", views.feedback, name="feedback"),
    path("widget/panel", widget.widget_panel, name="widget-panel"),
    path("widget/config", widget.widget_config, name="widget-config"),
    path("widget/me", widget.widget_me, name="widget-me"),
    path("widget/ask", widget.widget_ask, name="widget-ask"),
    path("widget/signed-in", widget.widget_signed_in, name="widget-signed-in"),
]
