"""A user's own settings for the pages (events.models.UserPreference): read for every page, set
through PUT /api/preferences. Only ever the signed-in user's own row."""

from __future__ import annotations

from events.models import UserPreference


def time_zone(user) -> str:
    """"utc" (the default, also for anyone signed out) or "local": how the pages show times."""
    if not getattr(user, "is_authenticated", False):
        return UserPreference.UTC
    found = UserPreference.objects.filter(user=user).values_list("time_zone", flat=True).first()
    return found or UserPreference.UTC


def set_time_zone(user, value: str) -> str:
    UserPreference.objects.update_or_create(user=user, defaults={"time_zone": value})
    return value
