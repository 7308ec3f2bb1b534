"""Writes of insight variables."""
from rest_framework.exceptions import ValidationError

from .models import InsightVariable, code_name_for


def create_variable(*, team, user, data: dict) -> InsightVariable:
    code_name = code_name_for(data["name"])
    if InsightVariable.objects.filter(team=team, code_name=code_name).exists():
        raise ValidationError("Variable with this code name already exists")
    return InsightVariable.objects.create(team=team, created_by=user, code_name=code_name, **data)
