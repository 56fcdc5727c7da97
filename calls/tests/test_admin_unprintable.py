"""A call whose stored data holds a lone surrogate (SQLite keeps one inside JSON; input is checked now) still renders on
its console page: the caller's input can no longer break the page staff use to review that call."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from calls.models import Call
from conftest import logged_in, make_call


def test_a_call_with_a_lone_surrogate_in_its_metadata_renders(org_a, staff_a):
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite can hold a lone surrogate (inside JSON); PostgreSQL refuses it at the write")
    call = make_call(org_a, caller_name="Surrogate Test")
    Call.objects.filter(pk=call.pk).update(metadata={"page": "\ud800"})

    response = logged_in(staff_a).get(reverse("admin:calls_call_change", args=[call.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "\\ud800" in page
