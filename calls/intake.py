"""Validation of a structured intake against a clinic's intake fields.

Pure: takes the field definitions and the submitted data, returns the cleaned data or field errors. Used by the API
(`/api/call/end`), the `complete_intake` tool (errors go back to the model) and the console.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from organizations.models import E164_REGEX, IntakeField

MAX_TEXT_LENGTH = 1000
_PHONE_JUNK = re.compile(r"[\s().-]")
_E164 = re.compile(E164_REGEX)
# The forms of a phone number a client may send where the API asks for one (a caller's own number at call start):
# E.164, 00 + country code, or a North American number of 10 digits (or 11 with the leading 1), with spaces,
# dots, dashes or parentheses anywhere. Every match normalises to E.164 (normalize_phone); the schema publishes it.
_SEP = r"[ ().\-]*"
_DIGITS = r"(?:[0-9]" + _SEP + ")"
PHONE_INPUT_PATTERN = (
    rf"^{_SEP}(?:"
    rf"\+{_SEP}[1-9]{_SEP}{_DIGITS}{{6,14}}"  # +14155550123
    rf"|0{_SEP}0{_SEP}[1-9]{_SEP}{_DIGITS}{{6,14}}"  # 0044 20 7946 0018
    rf"|[2-9]{_SEP}{_DIGITS}{{9}}"  # (415) 555-0123
    rf"|1{_SEP}[2-9]{_SEP}{_DIGITS}{{9}}"  # 1 415 555 0123
    r")$"
)
_TRUE = {"true", "yes", "y", "1", "si", "sí"}
_FALSE = {"false", "no", "n", "0"}


@dataclass
class IntakeResult:
    data: dict = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    missing_required: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def complete(self) -> bool:
        return self.ok and not self.missing_required


def normalize_phone(value: str) -> str | None:
    """E.164 from what callers and models actually produce ('(415) 555-0123', '1 415 555 0123')."""
    digits = _PHONE_JUNK.sub("", value.strip())
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not digits.startswith("+"):
        if len(digits) == 10 and digits.isdigit():  # a North American number without country code
            digits = "+1" + digits
        elif len(digits) == 11 and digits.startswith("1") and digits.isdigit():
            digits = "+" + digits
        else:
            return None
    return digits if _E164.match(digits) else None


def _clean_value(spec: IntakeField, value: object) -> tuple[object, str | None]:
    kind = spec.field_type
    if kind == IntakeField.FieldType.BOOLEAN:
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE, None
        return None, "Expected yes or no."
    if not isinstance(value, str):
        return None, "Expected text."
    text = value.strip()
    if len(text) > MAX_TEXT_LENGTH:
        return None, f"At most {MAX_TEXT_LENGTH} characters."
    if kind == IntakeField.FieldType.DATE:
        try:
            parsed = dt.date.fromisoformat(text)
        except ValueError:
            return None, "Expected a date as YYYY-MM-DD."
        if parsed.year < 1900 or parsed > dt.date.today() + dt.timedelta(days=366 * 2):  # noqa: DTZ011 - a date bound
            return None, "That date is out of range."
        return parsed.isoformat(), None
    if kind == IntakeField.FieldType.PHONE:
        phone = normalize_phone(text)
        if phone is None:
            return None, "Expected a phone number in E.164 format, e.g. +14155550123."
        return phone, None
    if kind == IntakeField.FieldType.CHOICE:
        allowed = [str(choice) for choice in spec.choices]
        lowered = {choice.lower(): choice for choice in allowed}
        if text.lower() not in lowered:
            return None, f"Expected one of: {', '.join(allowed)}."
        return lowered[text.lower()], None
    return text, None


def validate_intake(fields: Iterable[IntakeField], data: object) -> IntakeResult:
    """Check `data` against the clinic's fields. Unknown keys are errors, not silently dropped."""
    result = IntakeResult()
    if not isinstance(data, dict):
        result.errors["non_field_errors"] = ["Expected an object of intake fields."]
        return result
    specs = {spec.name: spec for spec in fields}
    for key in data:
        if key not in specs:
            result.errors[str(key)] = ["Unknown intake field."]
    for name, spec in specs.items():
        value = data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if spec.required:
                result.missing_required.append(name)
            continue
        cleaned, error = _clean_value(spec, value)
        if error:
            result.errors[name] = [error]
        else:
            result.data[name] = cleaned
    return result
