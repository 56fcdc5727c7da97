"""OpenAPI pieces shared by the API's views: the error shape, documented error responses, caller-side security
schemes, and the hook that lists each path once although it is routed with and without a trailing slash."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import BasePermission

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable code, e.g. validation_error, invalid_org_key.")
    message = serializers.CharField(help_text="A human sentence.")
    # DRF's serializer metaclass moves declared fields out of the class body, so this does not shadow
    # Serializer.fields at run time; the stubs see a plain class attribute overriding that property.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='Per-field problems by dotted path, e.g. {"intake.callback_number": ["…"]}.',
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def error_response(
    description: str, code: str, message: str, fields: dict[str, list[str]] | None = None
) -> OpenApiResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return OpenApiResponse(
        response=ErrorSerializer,
        description=description,
        examples=[OpenApiExample(code, value={"error": body}, response_only=True)],
    )


ERROR_400 = error_response(
    "Malformed JSON (invalid_json) or invalid values (validation_error, with fields).",
    "validation_error",
    "The request is not valid; see fields.",
    {"channel": ['"phone" is not a valid choice.']},
)
ERROR_401 = error_response(
    "Missing or unknown credentials (missing_org_key, invalid_org_key, missing_call_token, invalid_call_token, "
    "call_token_expired, not_authenticated, authentication_failed).",
    "invalid_org_key",
    "The X-Org-Key header does not name a clinic.",
)
ERROR_403 = error_response(
    "Not allowed: origin_not_allowed or event_forwarding_off (caller side), or permission_denied (staff).",
    "permission_denied",
    "You do not have permission to do this.",
)
ERROR_404 = error_response("Unknown, or another clinic's (never distinguished).", "not_found", "Not found.")
ERROR_413 = error_response("Body over the size limit.", "payload_too_large", "The request body is too large.")
ERROR_415 = error_response("Body not sent as application/json.", "unsupported_media_type", "Send the body as JSON.")
ERROR_429 = error_response(
    "Rate limit reached; the Retry-After header says when to retry.",
    "throttled",
    "Too many requests; retry in 12 seconds.",
)

STAFF_READ_ERRORS = {400: ERROR_400, 401: ERROR_401, 403: ERROR_403, 404: ERROR_404}
WRITE_ERRORS = {413: ERROR_413, 415: ERROR_415}
# 409 on the caller side: the call has moved on (ended, or another OpenAI call owns it).
ERROR_409_CALL_ENDED = error_response("The call has already ended.", "call_ended", "This call has already ended.")
ERROR_409_SERVER_ATTACHED = error_response(
    "The server is attached to this call and records the agent's side itself (server_attached).",
    "server_attached",
    "The server is attached to this call and records the agent's side itself; send only the caller's lines.",
)
CALLER_ERRORS = {400: ERROR_400, 401: ERROR_401, 403: ERROR_403, 429: ERROR_429, **WRITE_ERRORS}

CALL_START_RESPONSE = inline_serializer(
    name="CallStarted",
    fields={
        "call_id": serializers.UUIDField(),
        "call_token": serializers.CharField(help_text="ct_…: send as X-Call-Token on this call's later requests."),
        "status": serializers.ChoiceField(choices=["in_progress"]),
        "started_at": serializers.DateTimeField(),
        "organization": inline_serializer(
            name="CallOrganization", fields={"id": serializers.UUIDField(), "name": serializers.CharField()}
        ),
    },
)


def drop_trailing_slash_duplicates(endpoints: list[tuple], **kwargs: Any) -> list[tuple]:
    """PREPROCESSING_HOOK: each route exists as `/x` and `/x/`; document `/x` only (one operation id each)."""
    paths = {endpoint[0] for endpoint in endpoints}
    return [endpoint for endpoint in endpoints if not (endpoint[0].endswith("/") and endpoint[0].rstrip("/") in paths)]


class ApiDocsVisible(BasePermission):
    """Who may read the schema and the Swagger UI: anyone with PUBLIC_API_DOCS (read per request), otherwise console
    staff only (a production deployment need not publish its API map)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if settings.PUBLIC_API_DOCS:
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)


# A JSON Schema `pattern` for "no NUL": the server refuses U+0000 in every string and every key (core/jsonsafe.py).
NO_NUL_PATTERN = "^[^\\u0000]*$"
# Any JSON value without a NUL in a string or a key, at any depth: what a free-form field (metadata, intake, an
# event) and a field the server ignores may hold. Keys are constrained with patternProperties + no other properties,
# which generators follow (they ignore propertyNames); both need OpenAPI 3.1 (SPECTACULAR_SETTINGS["OAS_VERSION"]).
FREE_JSON = "FreeJsonValue"
FREE_JSON_REF = {"$ref": f"#/components/schemas/{FREE_JSON}"}
FREE_JSON_SCHEMA: dict[str, Any] = {
    "description": "Any JSON value; no string or key may contain NUL (U+0000).",
    "anyOf": [
        {"type": "null"},
        {"type": "string", "pattern": NO_NUL_PATTERN},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "array", "items": FREE_JSON_REF},
        {"type": "object", "patternProperties": {NO_NUL_PATTERN: FREE_JSON_REF}, "additionalProperties": False},
    ],
}


# The same, nested at most N more levels (a value that may still hold N levels of arrays/objects below it): what a
# field whose depth the server bounds accepts (calls.api.serializers.check_json_safe). At 0 only scalars and empty
# arrays/objects: their children would be one level too deep. JSON Schema has no depth keyword, so it is unrolled.
BOUNDED_JSON = "FreeJsonValueNested{}"
MAX_BOUNDED_LEVELS = 8


def bounded_json_ref(levels: int) -> dict[str, str]:
    if not 0 <= levels <= MAX_BOUNDED_LEVELS:
        raise ValueError(f"levels must be 0..{MAX_BOUNDED_LEVELS}")
    return {"$ref": f"#/components/schemas/{BOUNDED_JSON.format(levels)}"}


def _bounded_json_schema(levels: int) -> dict[str, Any]:
    scalars: list[dict[str, Any]] = [
        {"type": "null"},
        {"type": "string", "pattern": NO_NUL_PATTERN},
        {"type": "number"},
        {"type": "boolean"},
    ]
    if levels == 0:
        containers: list[dict[str, Any]] = [{"type": "array", "maxItems": 0}, {"type": "object", "maxProperties": 0}]
    else:
        inner = bounded_json_ref(levels - 1)
        containers = [
            {"type": "array", "items": inner},
            {"type": "object", "patternProperties": {NO_NUL_PATTERN: inner}, "additionalProperties": False},
        ]
    return {
        "description": f"Any JSON value nested at most {levels} more levels; no string or key may contain NUL.",
        "anyOf": scalars + containers,
    }


# A field's most bytes once serialised as compact JSON with non-ASCII escaped (json_size): a bound JSON Schema has no
# keyword for, stated as a vendor extension beside the field's description.
MAX_JSON_BYTES_KEYWORD = "x-max-json-bytes"


def json_size(value: Any) -> int:
    """The size a MAX_JSON_BYTES_KEYWORD bound measures: compact JSON, non-ASCII as \\u escapes (so one byte per
    character, whatever the client's own spacing or encoding)."""
    return len(json.dumps(value, separators=(",", ":")))


def bounded_json_object(levels: int, description: str) -> dict[str, Any]:
    """An object field whose values may nest `levels` more levels (for extend_schema_field)."""
    return {
        "type": "object",
        "description": description,
        "patternProperties": {NO_NUL_PATTERN: bounded_json_ref(levels)},
        "additionalProperties": False,
    }


def _keys_without_nul(schema: dict[str, Any], values: Any) -> None:
    """Any other key may be sent (the server ignores or stores it) as long as it and its value hold no NUL."""
    schema["patternProperties"] = {NO_NUL_PATTERN: values}
    schema["additionalProperties"] = False


def _no_nul(schema: Any) -> None:
    if not isinstance(schema, dict) or "$ref" in schema:
        return
    if schema.get("type") == "string" and not ({"format", "enum", "pattern"} & schema.keys()):
        schema["pattern"] = NO_NUL_PATTERN
    for child in (schema.get("properties") or {}).values():
        _no_nul(child)
    _no_nul(schema.get("items"))
    for key in ("allOf", "anyOf", "oneOf"):
        for child in schema.get(key) or []:
            _no_nul(child)
    if schema.get("type") == "object" and "patternProperties" not in schema:
        extra = schema.get("additionalProperties", True)
        if extra is not False:  # False: the serializer refuses unknown fields (400)
            if extra in ({}, True):
                extra = FREE_JSON_REF
            else:
                _no_nul(extra)
            _keys_without_nul(schema, extra)


def document_text_rules(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """POSTPROCESSING_HOOK: the input rules every operation enforces, in the schema: no NUL in any string or key of
    a request body or a parameter (request components, inline bodies, parameters), including fields the server
    ignores and the free-form values of metadata, intake and events."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in schemas.items():
        if name.endswith("Request"):  # COMPONENT_SPLIT_REQUEST: the input side of each serializer
            _no_nul(schema)
    schemas[FREE_JSON] = FREE_JSON_SCHEMA
    for levels in range(MAX_BOUNDED_LEVELS + 1):
        schemas[BOUNDED_JSON.format(levels)] = _bounded_json_schema(levels)
    for operations in (result.get("paths") or {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters") or []:
                _no_nul(parameter.get("schema"))
            for media in ((operation.get("requestBody") or {}).get("content") or {}).values():
                _no_nul(media.get("schema"))
    return result
