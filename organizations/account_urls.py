"""The page an invitation or access-reset link opens: the member sets their own password (Django's password-reset
token machinery; organizations.services.team_access_link makes the links)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from organizations.forms import AccessLinkSetPasswordForm

urlpatterns = [
    path(
        "account/set-password/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            form_class=AccessLinkSetPasswordForm,
            success_url=reverse_lazy("account-set-password-done"),
            # The link is single-use: no automatic login; they sign in with the new password.
            post_reset_login=False,
        ),
        name="account-set-password",
    ),
    path(
        "account/set-password/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="account-set-password-done",
    ),
]
