"""A user's teams from the provider's teams claim (EDOBS_OIDC_TEAMS_CLAIM, default `groups`)."""

import logging
import re

from django.conf import settings

from events.models import Team

logger = logging.getLogger(__name__)


def claimed_team_names(claims: dict) -> set[str]:
    """The claim's values: a list of strings, or one string of names split by spaces or commas.
    Anything else (a number, a nested object, no claim) names no team."""
    value = claims.get(settings.EDOBS_OIDC_TEAMS_CLAIM)
    if isinstance(value, str):
        return {name for name in re.split(r"[\s,]+", value) if name}
    if isinstance(value, list):
        return {item.strip() for item in value if isinstance(item, str) and item.strip()}
    return set()


def set_teams_from_claims(user, claims: dict) -> list[str]:
    """Make the user's teams exactly the existing teams the claim names (exact, case-sensitive
    names); claimed names with no team are ignored, never created. Returns the teams' names."""
    teams = list(Team.objects.filter(name__in=claimed_team_names(claims)).order_by("name"))
    user.teams.set(teams)
    names = [team.name for team in teams]
    logger.info("OIDC: %s signed in with teams %s", user.get_username(), names or "(none)")
    return names
