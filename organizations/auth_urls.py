"""Staff authentication endpoints (trailing slash optional, like the rest of the API)."""

from django.urls import re_path

from organizations.auth_views import LogoutView

urlpatterns = [
    re_path(r"^auth/logout/?$", LogoutView.as_view(), name="auth-logout"),
]
