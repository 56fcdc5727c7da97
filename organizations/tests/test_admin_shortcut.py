"""The admin's "view on site" shortcut (/admin/r/<content type>/<id>/) answers one and the same 404 for another
clinic's existing object and for a missing one, in DEBUG too (it used to tell them apart)."""

from __future__ import annotations

import uuid

from django.contrib.contenttypes.models import ContentType

from calls.models import Call
from conftest import logged_in, make_call


def test_the_shortcut_does_not_tell_another_clinics_call_from_a_missing_one(settings, org_b, staff_a):
    settings.DEBUG = True
    foreign = make_call(org_b)
    content_type = ContentType.objects.get_for_model(Call).pk
    client = logged_in(staff_a)

    answers = []
    for object_id in (foreign.pk, uuid.uuid4()):
        response = client.get(f"/admin/r/{content_type}/{object_id}/")
        answers.append((response.status_code, response.content.decode().replace(str(object_id), "<id>")))

    assert answers[0] == answers[1]
    assert answers[0][0] == 404
