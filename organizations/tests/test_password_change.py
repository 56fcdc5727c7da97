"""A password change ends what the old password opened: the user's API tokens stop working at once, and every other
console session is signed out. The session the user changed it from stays signed in (they just proved it)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from conftest import PASSWORD, logged_in, token_for
from organizations.services import user_password_set

NEW_PASSWORD = "a-new-and-long-enough-passphrase-42"
INDEX = reverse("admin:index")


def token_works(key: str) -> bool:
    return Client(headers={"Authorization": f"Token {key}"}).get("/api/escalations").status_code == 200


def signed_in(client: Client) -> bool:
    return client.get(INDEX).status_code == 200


def test_changing_ones_own_password_in_the_console_revokes_tokens_and_other_sessions(staff_a):
    key = token_for(staff_a)
    other_browser = logged_in(staff_a)
    this_browser = logged_in(staff_a)
    assert token_works(key) and signed_in(other_browser)

    response = this_browser.post(
        reverse("admin:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302 and response["Location"] == reverse("admin:password_change_done")
    assert not token_works(key)
    assert not Token.objects.filter(user=staff_a).exists()
    assert not signed_in(other_browser)
    assert signed_in(this_browser)  # the session the change was made in stays (update_session_auth_hash)
    staff_a.refresh_from_db()
    assert staff_a.check_password(NEW_PASSWORD)


def test_a_wrong_old_password_changes_nothing(staff_a):
    key = token_for(staff_a)
    logged_in(staff_a).post(
        reverse("admin:password_change"),
        {"old_password": "not-it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert token_works(key)


@pytest.mark.parametrize("usable", ["true", "false"])
def test_an_operator_setting_a_users_password_revokes_that_users_tokens_and_sessions(operator, staff_a, usable):
    key = token_for(staff_a)
    staff_browser = logged_in(staff_a)
    operator_key = token_for(operator)

    response = logged_in(operator).post(
        reverse("admin:auth_user_password_change", args=[staff_a.pk]),
        {
            "usable_password": usable,
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            ("set-password" if usable == "true" else "unset-password"): "1",
        },
    )

    assert response.status_code == 302
    assert not token_works(key)
    assert not signed_in(staff_browser)
    assert Token.objects.filter(key=operator_key).exists()  # only the changed user's tokens go
    staff_a.refresh_from_db()
    assert staff_a.has_usable_password() is (usable == "true")


def test_the_service_revokes_every_token_of_the_user_only(staff_a, staff_b):
    token_for(staff_a)
    kept = token_for(staff_b)

    user_password_set(user=staff_a, password=NEW_PASSWORD)

    assert not Token.objects.filter(user=staff_a).exists()
    assert token_works(kept)
