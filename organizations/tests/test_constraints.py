"""Clinic configuration invariants: enforced by the database, and explained by validation in forms and the API."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from conftest import make_user
from organizations.models import BusinessHours, Closure, IntakeField, Membership, Organization, TwilioNumber


def db_rejects(model_cls, **fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        model_cls.objects.create(**fields)


@pytest.mark.django_db
class TestOrganizationConstraints:
    def test_slug_and_publishable_key_are_unique(self, org_a):
        db_rejects(Organization, name="Copy", slug=org_a.slug)
        db_rejects(Organization, name="Copy", slug="copy", publishable_key=org_a.publishable_key)

    def test_publishable_key_is_generated_with_its_prefix_and_regenerates(self, org_a):
        old = org_a.publishable_key
        assert old.startswith("pk_") and len(old) > 20
        org_a.regenerate_publishable_key()
        org_a.refresh_from_db()
        assert org_a.publishable_key != old and org_a.publishable_key.startswith("pk_")
        db_rejects(Organization, name="Bad", slug="bad", publishable_key="sk_nope")

    def test_phones_must_be_e164(self):
        db_rejects(Organization, name="X", slug="x", escalation_phone="555-0100")
        db_rejects(Organization, name="X", slug="x", on_call_phone="+0123")

    def test_forwarding_after_hours_needs_an_on_call_phone(self):
        db_rejects(Organization, name="X", slug="x", after_hours_policy="forward_on_call", on_call_phone="")
        with pytest.raises(ValidationError) as excinfo:
            Organization(name="X", slug="x", after_hours_policy="forward_on_call").full_clean()
        assert "on_call_phone" in excinfo.value.message_dict

    def test_call_length_and_vad_settings_are_bounded(self):
        db_rejects(Organization, name="X", slug="x", max_call_minutes=0)
        db_rejects(Organization, name="X", slug="x", max_call_minutes=61)
        db_rejects(Organization, name="X", slug="x", vad_threshold=1.5)
        db_rejects(Organization, name="X", slug="x", vad_silence_ms=50)

    def test_turn_detection_and_noise_reduction_are_known_values(self):
        db_rejects(Organization, name="X", slug="x", turn_detection="push_to_talk")
        db_rejects(Organization, name="X", slug="x", vad_eagerness="eager")
        db_rejects(Organization, name="X", slug="x", noise_reduction="studio")

    def test_the_idle_timeout_is_bounded_and_only_with_voice_activity_detection(self):
        db_rejects(Organization, name="X", slug="x", idle_timeout_ms=1000)
        db_rejects(Organization, name="X", slug="x", idle_timeout_ms=31000)
        db_rejects(Organization, name="X", slug="x", idle_timeout_ms=10000, turn_detection="semantic_vad")
        with pytest.raises(ValidationError) as excinfo:
            Organization(name="X", slug="x", idle_timeout_ms=10000, turn_detection="semantic_vad").full_clean()
        assert "idle_timeout_ms" in excinfo.value.message_dict
        Organization.objects.create(name="Y", slug="y", idle_timeout_ms=10000)

    def test_webhook_url_must_be_https(self):
        db_rejects(Organization, name="X", slug="x", webhook_url="http://clinic.example/hook")

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("timezone", "Mars/Olympus_Mons"),
            ("allowed_origins", ["https://clinic.example/path"]),
            ("allowed_origins", ["clinic.example"]),
            ("allowed_origins", "https://clinic.example"),
            ("services", ["Flu shots", "Flu shots"]),
            ("providers", ["Dr. Okafor", "Dr. Okafor"]),
            ("providers", "Dr. Okafor"),
            ("agent_languages", []),
            ("agent_languages", ["xx"]),
            ("escalation_phone", "(415) 555-0100"),
        ],
    )
    def test_validation_explains_bad_config(self, field, value):
        org = Organization(name="X", slug="x", **{field: value})
        with pytest.raises(ValidationError) as excinfo:
            org.full_clean()
        assert field in excinfo.value.message_dict

    def test_a_new_clinic_starts_with_the_default_intake_fields(self, org_a):
        fields = list(org_a.intake_fields.values_list("name", "field_type", "required"))
        assert fields == [
            ("patient_name", "text", True),
            ("date_of_birth", "date", True),
            ("callback_number", "phone", True),
            ("reason_for_call", "text", True),
            ("urgency", "choice", True),
            ("preferred_time", "text", False),
            ("is_new_patient", "boolean", False),
            ("insurance_provider", "text", False),
        ]
        assert org_a.intake_fields.get(name="urgency").choices == ["routine", "urgent", "emergency"]


@pytest.mark.django_db
class TestRelatedConfigConstraints:
    def test_weekday_must_exist(self, org_a):
        db_rejects(BusinessHours, organization=org_a, weekday=7, opens=dt.time(9), closes=dt.time(17))

    def test_one_closure_per_date(self, org_a):
        Closure.objects.create(organization=org_a, date=dt.date(2026, 12, 25), label="Christmas")
        db_rejects(Closure, organization=org_a, date=dt.date(2026, 12, 25), label="Again")

    def test_intake_field_names_are_unique_and_snake_case(self, org_a):
        db_rejects(IntakeField, organization=org_a, name="patient_name")
        db_rejects(IntakeField, organization=org_a, name="Patient Name")

    def test_choice_fields_need_choices(self, org_a):
        with pytest.raises(ValidationError):
            IntakeField(organization=org_a, name="pick", field_type="choice", choices=[]).full_clean()
        with pytest.raises(ValidationError):
            IntakeField(organization=org_a, name="text_with_choices", field_type="text", choices=["a"]).full_clean()

    def test_a_twilio_number_belongs_to_one_clinic(self, org_a, org_b):
        TwilioNumber.objects.create(organization=org_a, number="+14155550111")
        db_rejects(TwilioNumber, organization=org_b, number="+14155550111")
        db_rejects(TwilioNumber, organization=org_b, number="4155550112")

    def test_one_membership_per_user_and_clinic_with_a_known_role(self, org_a):
        user = make_user("carol", org_a)
        db_rejects(Membership, user=user, organization=org_a, role="admin")
        db_rejects(Membership, user=make_user("dave"), organization=org_a, role="owner")


@pytest.mark.django_db
def test_membership_role_drives_console_groups(org_a, org_b):
    from organizations.services import membership_remove, membership_set

    user = make_user("erin")
    assert not user.is_staff
    membership_set(user=user, organization=org_a, role="staff")
    user.refresh_from_db()
    assert user.is_staff and set(user.groups.values_list("name", flat=True)) == {"Clinic staff"}
    assert user.has_perm("calls.view_call") and not user.has_perm("organizations.change_organization")
    membership_set(user=user, organization=org_b, role="admin")
    user = type(user).objects.get(pk=user.pk)  # fresh permission cache
    assert set(user.groups.values_list("name", flat=True)) == {"Clinic staff", "Clinic admins"}
    assert user.has_perm("organizations.change_organization")
    membership_remove(user=user, organization=org_a)
    membership_remove(user=user, organization=org_b)
    user = type(user).objects.get(pk=user.pk)
    assert not user.is_staff and not user.groups.exists()


@pytest.mark.django_db
def test_console_groups_come_back_after_being_removed():
    from django.contrib.auth.models import Group

    from organizations.services import console_groups_ensure

    Group.objects.all().delete()
    console_groups_ensure()
    admins = Group.objects.get(name="Clinic admins")
    assert admins.permissions.filter(codename="change_organization").exists()
    assert not Group.objects.get(name="Clinic staff").permissions.filter(codename="change_organization").exists()
