"""Which numbers a clinic's calls may be sent to: the toll-fraud guard for escalation, on-call and transfer numbers.

A number is dialled only if libphonenumber (the `phonenumbers` package, Google's metadata) says it is a valid number
of one of the clinic's dial countries and not a premium-rate, shared-cost or similar range (docs/facts.md#dialling).
International shared-cost ranges (+882, +883, +870, +979) belong to no country (region "001"), so they never pass.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

# Ranges where the called party earns from the call (or the cost is shared): the classic toll-fraud targets.
REFUSED_TYPES = {
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.UAN,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER,
    PhoneNumberType.VOICEMAIL,
    PhoneNumberType.UNKNOWN,
}
DEFAULT_DIAL_COUNTRIES = ("US",)  # the clinics' own country: the agent's safety rules send callers to 911 and 988


def is_country_code(value: str) -> bool:
    return value in phonenumbers.SUPPORTED_REGIONS


def dial_refusal(number: str, countries: list[str]) -> str | None:
    """Why `number` (E.164) may not be dialled for a clinic with these dial countries, or None if it may."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return "Enter a phone number in E.164 format, e.g. +14155550123."
    if not phonenumbers.is_valid_number(parsed):
        return "This is not a valid phone number."
    region = phonenumbers.region_code_for_number(parsed)
    if region not in countries:
        allowed = ", ".join(countries) or "none"
        return f"Calls may only be sent to numbers in the clinic's dial countries ({allowed})."
    if phonenumbers.number_type(parsed) in REFUSED_TYPES:
        return "Premium-rate, shared-cost and similar numbers cannot be dialled."
    return None
