"""JSON that a database and a log line can hold: one check for every path that parses caller input (the API's
JSON parser, the board and media WebSockets, form and query input).

PostgreSQL refuses NUL (U+0000) in text and jsonb, and UTF-8 cannot encode a lone surrogate (U+D800..U+DFFF, which
JSON's `\\ud800` escape produces): either one stored from a request is a 500 on PostgreSQL, and a surrogate stored on
SQLite breaks every page that renders it. Deep nesting costs recursion in every consumer of the value (json,
serializers, the ORM's encoder) and is never legitimate here. Pure helpers: no Django state.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_JSON_DEPTH = 32  # arrays/objects inside each other; real payloads here nest 4-5 levels

_SURROGATES = re.compile("[\ud800-\udfff]")


class UnsafeInput(ValueError):
    """Input refused with a machine code (`invalid_json`, `invalid_text`, `too_deep`) and a human message that
    never repeats the input."""

    def __init__(self, code: str, message: str, path: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path  # where in the value, dotted as the API's field errors are: "caller.name", "items.0"


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as text, or None."""
    if "\x00" in value:
        return "Text may not contain NUL (U+0000) characters."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Text may not contain unpaired surrogate characters (U+D800 to U+DFFF)."
    return None


def check_text(value: str) -> None:
    problem = text_problem(value)
    if problem is not None:
        raise UnsafeInput("invalid_text", problem)


def check_json_value(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise UnsafeInput for a NUL or a lone surrogate in any string or key, or nesting deeper than `max_depth`.
    Iterative, so an absurdly deep value cannot exhaust the stack here either."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            _check_at(item, path)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise UnsafeInput("too_deep", f"JSON may nest at most {max_depth} levels deep.", path)
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str):
                    _check_at(key, path)  # the key itself is the problem: name its parent
                stack.append((child, depth + 1, child_path))


def _check_at(text: str, path: str) -> None:
    problem = text_problem(text)
    if problem is not None:
        raise UnsafeInput("invalid_text", problem, printable(path.replace("\x00", "\\x00")))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # 1e400 parses to inf, which PostgreSQL's jsonb cannot store.
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


def loads(data: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:  # whatever JSON value the text holds
    """Parse strict JSON (no NaN/Infinity, finite numbers, UTF-8) and check it with `check_json_value`."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise UnsafeInput("too_deep", f"JSON may nest at most {max_depth} levels deep.") from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UnsafeInput("invalid_json", "The body is not valid JSON.") from None
    check_json_value(value, max_depth=max_depth)
    return value


def printable(text: str) -> str:
    """`text` with lone surrogates written as `\\udxxx`, so a page or a log line can always encode it."""
    return _SURROGATES.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
