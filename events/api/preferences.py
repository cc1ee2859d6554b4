"""PUT /api/preferences: the signed-in user's own choices for the pages (times in UTC or local)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers as s
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.api.params import answers
from events.models import UserPreference
from events.read import preferences


class PreferencesSerializer(s.Serializer):
    time_zone = s.ChoiceField(
        choices=[value for value, _ in UserPreference.TIME_ZONES],
        help_text='"utc": every time in UTC; "local": in the browser\'s own time zone',
    )


class PreferencesView(APIView):
    """Read or set the signed-in user's preferences (nobody else's)."""

    @extend_schema(responses=answers(PreferencesSerializer))
    def get(self, request: Request) -> Response:
        return Response({"time_zone": preferences.time_zone(request.user)})

    @extend_schema(request=PreferencesSerializer, responses=answers(PreferencesSerializer, 400))
    def put(self, request: Request) -> Response:
        serializer = PreferencesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        value = preferences.set_time_zone(request.user, serializer.validated_data["time_zone"])
        return Response({"time_zone": value})
