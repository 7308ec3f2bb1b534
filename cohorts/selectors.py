"""Reads of cohorts that are more than one ORM call."""
from django.db.models import Prefetch

from events.models import Person, PersonDistinctId

from .definition import has_behavioral, referenced_cohort_ids
from .models import Cohort, CohortPeople


def live_cohorts(team):
    """The project's cohorts (cohorts are project-scoped), deleted ones left out."""
    return Cohort.objects.filter(team__project_id=team.project_id, deleted=False).select_related("created_by")


def behavioral_cohort_ids(queryset) -> set[int]:
    """Ids of cohorts with a behavioral leaf, directly or through the cohorts they refer to."""
    filters = dict(queryset.model.objects.filter(team__project_id__in=queryset.values("team__project_id")).values_list("id", "filters"))
    behavioral = {cohort_id for cohort_id, value in filters.items() if has_behavioral(value)}
    changed = True
    while changed:  # follow references until nothing new is found
        changed = False
        for cohort_id, value in filters.items():
            if cohort_id not in behavioral and referenced_cohort_ids(value) & behavioral:
                behavioral.add(cohort_id)
                changed = True
    return behavioral


def cohort_persons(cohort: Cohort):
    """The members of a cohort's current version, oldest person first, with their distinct ids."""
    if cohort.version is None:
        return Person.objects.none()
    members = CohortPeople.objects.filter(cohort_id=cohort.id, version=cohort.version).values("person_id")
    return (Person.objects.filter(id__in=members).order_by("id")
            .prefetch_related(Prefetch("distinct_ids", queryset=PersonDistinctId.objects.order_by("id"))))


def reference_loop(cohort_id: int, filters: dict, team) -> bool:
    """Whether `filters` refer (transitively) to the cohort `cohort_id` itself."""
    seen, frontier = set(), referenced_cohort_ids(filters)
    while frontier:
        if cohort_id in frontier:
            return True
        seen |= frontier
        rows = Cohort.objects.filter(id__in=frontier, team__project_id=team.project_id).values_list("filters", flat=True)
        frontier = set().union(*[referenced_cohort_ids(value) for value in rows]) - seen if rows else set()
    return False
