"""`python -m voiceagent.tests.faults.seed`: the fault suite's clinic, in the database DATABASE_URL names.

Prints one JSON line: the clinic's id and publishable key, its Twilio number and a staff session cookie for the board.
"""

from __future__ import annotations

import datetime as dt
import json

import django


def main() -> None:
    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from organizations.models import BusinessHours, Membership, TwilioNumber
    from organizations.services import membership_set, organization_create

    organization = organization_create(
        name="Fault Clinic",
        slug="fault-clinic",
        timezone="America/New_York",
        escalation_phone="+14155550100",
        allowed_origins=["https://fault-clinic.example"],
    )
    for weekday in range(7):  # equal open and close times: open around the clock
        BusinessHours.objects.create(organization=organization, weekday=weekday, opens=dt.time(0), closes=dt.time(0))
    number = TwilioNumber.objects.create(organization=organization, number="+14155550111")
    user = get_user_model().objects.create_user(username="desk", password="faults-desk-password-0123")
    membership_set(user=user, organization=organization, role=Membership.Role.STAFF)
    client = Client()
    client.force_login(user)
    print(
        json.dumps(
            {
                "organization_id": str(organization.pk),
                "org_key": organization.publishable_key,
                "number": number.number,
                "session": client.cookies["sessionid"].value,
            }
        )
    )


if __name__ == "__main__":
    main()
