"""The API's JSON parser: bounded in size and nesting, and strict about what it accepts.

DRF's JSONParser reads the raw stream (bypassing DATA_UPLOAD_MAX_MEMORY_SIZE) and lets RecursionError from deeply
nested input escape as a 500; this one answers 413 and 400 instead. It is the one chokepoint for JSON bodies: text
a database cannot store (NUL, lone surrogates) and nesting past core.jsonsafe.MAX_JSON_DEPTH are refused here with
400 `invalid_text` / `too_deep`, before any view or serializer sees them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from core import jsonsafe
from core.errors import ApiError


def max_body_bytes() -> int:
    return int(getattr(settings, "API_MAX_BODY_BYTES", 262_144))


def payload_too_large() -> ApiError:
    limit = max_body_bytes()
    return ApiError(413, "payload_too_large", f"The request body is larger than the limit of {limit} bytes.")


class LimitedJSONParser(BaseParser):
    media_type = "application/json"

    def parse(
        self, stream: IO[bytes] | None, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:  # whatever JSON value the body holds
        limit = max_body_bytes()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise payload_too_large()
        try:
            return jsonsafe.loads(raw)
        except jsonsafe.UnsafeInput as exc:
            if exc.code == "invalid_json":
                raise ParseError("The request body is not valid JSON.") from None
            fields = {exc.path: [exc.message]} if exc.path else None
            raise ApiError(400, exc.code, exc.message, fields=fields) from None
