import django_filters

from .models import ExportedAsset, ExportFormat


class ExportedAssetFilter(django_filters.FilterSet):
    context_path = django_filters.CharFilter(field_name="export_context__path", lookup_expr="icontains",
                                             help_text="Only exports whose `export_context.path` contains this text.")
    export_format = django_filters.ChoiceFilter(choices=ExportFormat.choices, help_text="Only exports of this format.")

    class Meta:
        model = ExportedAsset
        fields = ["context_path", "export_format"]
