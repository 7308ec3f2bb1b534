"""Reads of insight variables."""
from .models import InsightVariable


def team_variables(team):
    return InsightVariable.objects.filter(team=team).select_related("created_by")
