"""Every JSON error has one shape: {"error": "..."}."""

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from events.stores.base import BadCursor


def _message(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_message(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(_message(item) for item in detail)
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, BadCursor):
        return Response({"error": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = {"error": _message(response.data.get("detail", response.data))}
    return response


def not_found(what: str) -> Response:
    return Response({"error": f"{what} not found"}, status=status.HTTP_404_NOT_FOUND)
