"""Exported assets: an insight's result as a CSV/XLSX file or its chart as a PNG.

The file lives in the `content` column: every web and worker process reads the same database,
so nothing else has to be shared or backed up, a file and its row are written and deleted in one
transaction, and the row caps (300 000 rows) keep files to a size a database column holds well.
"""
from django.conf import settings
from django.db import models
from django.utils.text import slugify

from accounts.models import Team
from insights.models import Dashboard, Insight


class ExportFormat(models.TextChoices):
    PNG = "image/png"
    PDF = "application/pdf"
    CSV = "text/csv"
    XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    WEBM = "video/webm"
    MP4 = "video/mp4"
    GIF = "image/gif"
    JSON = "application/json"


EXTENSIONS = {
    ExportFormat.PNG: "png", ExportFormat.PDF: "pdf", ExportFormat.CSV: "csv", ExportFormat.XLSX: "xlsx",
    ExportFormat.WEBM: "webm", ExportFormat.MP4: "mp4", ExportFormat.GIF: "gif", ExportFormat.JSON: "json",
}


class ExportedAsset(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    dashboard = models.ForeignKey(Dashboard, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    insight = models.ForeignKey(Insight, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    export_format = models.CharField(max_length=100, choices=ExportFormat.choices)
    content = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    expires_after = models.DateTimeField(null=True, blank=True)
    export_context = models.JSONField(null=True, blank=True)
    exception = models.TextField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["team", "created_by", "created_at"]), models.Index(fields=["expires_after"])]

    @property
    def has_content(self) -> bool:
        return self.content is not None

    @property
    def filename(self) -> str:
        context = self.export_context if isinstance(self.export_context, dict) else {}
        if context.get("filename"):
            base = slugify(str(context["filename"]))
        elif self.dashboard_id:
            base = f"export-{slugify(self.dashboard.name or '')}"
        elif self.insight_id:
            base = f"export-{slugify(self.insight.name or self.insight.derived_name or '')}"
        else:
            base = "export"
        return f"{base}.{EXTENSIONS.get(self.export_format, 'bin')}"
