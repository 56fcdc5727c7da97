"""A clinic's settings are listed once (organizations.models.CLINIC_SETTINGS): the console form and page and the
config API all cover exactly that list, so a new setting cannot be forgotten in one of them."""

from __future__ import annotations

from django.contrib import admin

from organizations.api.serializers import (
    AGENT_FIELDS,
    TOP_LEVEL_SETTINGS,
    AgentSerializer,
    OrganizationConfigSerializer,
    OrganizationConfigUpdateSerializer,
)
from organizations.forms import OrganizationForm
from organizations.models import (
    CLINIC_SETTINGS,
    CONFIG_LISTS,
    OPERATOR_SETTINGS,
    PAGING_SETTINGS,
    RETENTION_SETTINGS,
    Organization,
)


def test_the_console_form_edits_the_settings_and_the_operators_fields():
    console_only = {*RETENTION_SETTINGS, *OPERATOR_SETTINGS, *PAGING_SETTINGS}
    assert set(OrganizationForm.base_fields) == {"slug", *CLINIC_SETTINGS, *console_only}


def test_the_console_page_places_every_setting_once():
    fieldsets = admin.site.get_model_admin(Organization).fieldsets
    assert fieldsets is not None
    placed = [name for _title, options in fieldsets for name in options["fields"]]
    assert len(placed) == len(set(placed))
    assert {"slug", *CLINIC_SETTINGS, *RETENTION_SETTINGS, *OPERATOR_SETTINGS, *PAGING_SETTINGS} <= set(placed)


def test_the_config_api_changes_and_shows_every_setting_and_list():
    update = OrganizationConfigUpdateSerializer().fields
    output = OrganizationConfigSerializer().fields
    assert set(update) == {*TOP_LEVEL_SETTINGS, "agent", *CONFIG_LISTS}
    assert set(AgentSerializer().fields) == set(AGENT_FIELDS)
    assert {*TOP_LEVEL_SETTINGS, "agent", *CONFIG_LISTS} <= set(output)
    assert {*TOP_LEVEL_SETTINGS, *AGENT_FIELDS.values()} == set(CLINIC_SETTINGS)


def test_clinic_text_for_the_prompt_is_bounded_at_input_for_the_console_too(db):
    import pytest
    from django.core.exceptions import ValidationError

    org = Organization(name="Bounded", slug="bounded", agent_extra_instructions="x" * 4001, services=["a\nb"])
    with pytest.raises(ValidationError) as error:
        org.full_clean()
    assert {"agent_extra_instructions", "services"} <= set(error.value.message_dict)
    assert "one line" in " ".join(error.value.message_dict["services"])
