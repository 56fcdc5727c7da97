"""OPTIONS answers for the API.

DRF's SimpleMetadata describes a view's POST/PUT body by calling `get_serializer()`. Our action views (escalate,
acknowledge, ...) validate their input with a serializer of their own and have no `serializer_class`, where that
call is an AssertionError and OPTIONS answered 500. Those views are described without the body: name, parsers and
renderers; the OpenAPI schema documents their input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.metadata import SimpleMetadata

if TYPE_CHECKING:  # rest_framework.views loads this class from the settings while it is being imported
    from rest_framework.request import Request
    from rest_framework.views import APIView


def _has_serializer(view: APIView) -> bool:
    from rest_framework.generics import GenericAPIView

    if not isinstance(view, GenericAPIView):
        return False
    overridden = type(view).get_serializer_class is not GenericAPIView.get_serializer_class
    return overridden or getattr(view, "serializer_class", None) is not None


class ApiMetadata(SimpleMetadata):
    def determine_actions(self, request: Request, view: APIView) -> dict[str, Any]:
        if not _has_serializer(view):
            return {}
        return super().determine_actions(request, view)
