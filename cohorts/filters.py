import django_filters
from django.db.models import Q

from .models import Cohort


class CohortFilter(django_filters.FilterSet):
    type = django_filters.ChoiceFilter(choices=[("static", "static"), ("dynamic", "dynamic")], method="filter_type",
                                       help_text="Only static or only dynamic cohorts.")
    created_by_id = django_filters.NumberFilter(field_name="created_by_id", help_text="Only cohorts created by this user id.")
    search = django_filters.CharFilter(field_name="name", lookup_expr="icontains", help_text="Name contains (case-insensitive).")
    hide_behavioral_cohorts = django_filters.BooleanFilter(method="filter_behavioral",
                                                           help_text="Leave out cohorts with behavioral filters.")

    class Meta:
        model = Cohort
        fields = ["type", "created_by_id", "search", "hide_behavioral_cohorts"]

    def filter_type(self, queryset, name, value):
        return queryset.filter(is_static=value == "static")

    def filter_behavioral(self, queryset, name, value):
        if not value:
            return queryset
        from .selectors import behavioral_cohort_ids

        return queryset.exclude(id__in=behavioral_cohort_ids(queryset))
