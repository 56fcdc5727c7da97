"""A password change ends what the old password opened: the user's API tokens stop working at once, and every other
console session is signed out. The session the user changed it from stays signed in (they just proved it)."""

from __future__ import annotations

import io
from unittest import mock

import pytest
from django.core.management import call_command
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


def test_manage_py_changepassword_revokes_the_users_tokens_and_sessions(staff_a, staff_b):
    key = token_for(staff_a)
    kept = token_for(staff_b)
    browser = logged_in(staff_a)

    with mock.patch("getpass.getpass", return_value=NEW_PASSWORD):  # the command's two password prompts
        call_command("changepassword", staff_a.username, stdout=io.StringIO())

    staff_a.refresh_from_db()
    assert staff_a.check_password(NEW_PASSWORD)
    assert not token_works(key)
    assert not signed_in(browser)
    assert token_works(kept)


def test_any_code_that_sets_a_password_revokes_the_users_tokens(staff_a):
    """A shell or a script: set_password() then save(), no service called."""
    key = token_for(staff_a)
    browser = logged_in(staff_a)

    staff_a.set_password(NEW_PASSWORD)
    staff_a.save()

    assert not token_works(key)
    assert not signed_in(browser)


def test_saving_a_user_without_a_new_password_keeps_their_tokens(staff_a):
    key = token_for(staff_a)
    staff_a.first_name = "Renamed"
    staff_a.save()
    assert token_works(key)


def test_a_password_rehashed_at_login_keeps_the_users_tokens(staff_a, settings):
    """A newer hasher re-hashes the same password when the user signs in: nothing changed, nothing is revoked."""
    key = token_for(staff_a)
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",  # a newer default than the stored MD5
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    assert Client().login(username=staff_a.username, password=PASSWORD)
    staff_a.refresh_from_db()
    assert staff_a.password.startswith("pbkdf2_sha1$")  # it was re-hashed
    assert token_works(key)
