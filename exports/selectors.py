"""Reads of exported assets: expired ones are never shown, whether or not they are deleted yet."""
from django.db.models import Q
from django.utils import timezone

from .models import ExportedAsset


def live_assets(team):
    return (ExportedAsset.objects.filter(team=team).filter(Q(expires_after__isnull=True) | Q(expires_after__gt=timezone.now()))
            .select_related("insight", "dashboard"))
