"""Reads of actions."""
from .models import Action


def team_actions(team):
    """Every action of the team (retrieve also finds deleted ones, as PostHog)."""
    return Action.objects.filter(team=team).select_related("created_by")


def listed_actions(team):
    """The list: live actions, newest `last_calculated_at` first, then by name."""
    return team_actions(team).filter(deleted=False).order_by("-last_calculated_at", "name", "id")
