"""Input fields that accept exactly what the published schema says they accept.

DRF's CharField is lenient in ways the schema cannot express: it turns the number 12 into "12" (the schema says
`type: string`), it trims whitespace before its blank check (so "\\u001e", a string of length 1, is refused as blank)
and it checks `max_length` after trimming (so 3,000 spaces and a letter pass a 2,000-character limit). A client
written from the schema then sees answers it could not predict; `TextField` closes those gaps instead of
documenting them away.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

# "Holds at least one character that is not whitespace, and no NUL": what a field that may not be blank accepts
# after trimming. Python's `\s` is the same set str.strip() removes, so the pattern and the trim agree.
NOT_BLANK_PATTERN = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
not_blank = RegexValidator(NOT_BLANK_PATTERN, "This field may not be blank.", code="blank")


class TextField(serializers.CharField):
    """A string field for request bodies: strings only, length checked on what was sent, "not blank" documented."""

    default_error_messages = {"invalid": "Not a valid string: send text in quotes."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.allow_blank and self.trim_whitespace:
            # After any validator given by the caller: drf-spectacular documents the first pattern it finds.
            self.validators.append(not_blank)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)
