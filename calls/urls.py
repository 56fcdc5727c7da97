"""Pages of the calls app outside the admin: the live escalation board."""

from django.urls import path

from calls import views

app_name = "calls"

urlpatterns = [
    path("board/", views.board, name="board"),
]
