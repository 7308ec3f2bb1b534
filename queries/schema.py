"""Pydantic models of PostHog's query nodes (the supported subset of its query schema).

Field names, enum values and defaults follow PostHog's published schema. Every model keeps
unknown keys (`extra="allow"`): PostHog's clients send view-only and newer fields that the
server must store unchanged. `QuerySchemaRoot` validates any supported top-level node.
"""
from enum import Enum
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel


class SchemaModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --- Enums ------------------------------------------------------------------------------------


class IntervalType(str, Enum):
    second = "second"
    minute = "minute"
    hour = "hour"
    day = "day"
    week = "week"
    month = "month"


class PropertyOperator(str, Enum):
    exact = "exact"
    is_not = "is_not"
    icontains = "icontains"
    not_icontains = "not_icontains"
    regex = "regex"
    not_regex = "not_regex"
    gt = "gt"
    gte = "gte"
    lt = "lt"
    lte = "lte"
    is_set = "is_set"
    is_not_set = "is_not_set"
    is_date_exact = "is_date_exact"
    is_date_before = "is_date_before"
    is_date_after = "is_date_after"
    between = "between"
    not_between = "not_between"
    min = "min"
    max = "max"
    in_ = "in"
    not_in = "not_in"
    is_cleaned_path_exact = "is_cleaned_path_exact"
    flag_evaluates_to = "flag_evaluates_to"


PropertyFilterType = Literal[
    "meta", "event", "internal_event", "event_metadata", "person", "element", "feature", "session", "cohort",
    "recording", "log_entry", "group", "hogql", "data_warehouse", "data_warehouse_person_property",
    "error_tracking_issue", "revenue_analytics", "flag", "log", "static-cohort", "precalculated-cohort",
]

BaseMathType = Literal[
    "total", "dau", "weekly_active", "monthly_active", "unique_session", "first_time_for_user",
    "first_matching_event_for_user",
]
PropertyMathType = Literal["avg", "sum", "min", "max", "median", "p75", "p90", "p95", "p99"]
CountPerActorMathType = Literal[
    "avg_count_per_actor", "min_count_per_actor", "max_count_per_actor", "median_count_per_actor",
    "p75_count_per_actor", "p90_count_per_actor", "p95_count_per_actor", "p99_count_per_actor",
]
MathType = Literal[BaseMathType, PropertyMathType, CountPerActorMathType, Literal["unique_group", "hogql"]]


class ChartDisplayType(str, Enum):
    ActionsLineGraph = "ActionsLineGraph"
    ActionsBar = "ActionsBar"
    ActionsUnstackedBar = "ActionsUnstackedBar"
    ActionsStackedBar = "ActionsStackedBar"
    ActionsAreaGraph = "ActionsAreaGraph"
    ActionsLineGraphCumulative = "ActionsLineGraphCumulative"
    BoldNumber = "BoldNumber"
    ActionsPie = "ActionsPie"
    ActionsDonut = "ActionsDonut"
    ActionsBarValue = "ActionsBarValue"
    ActionsTable = "ActionsTable"
    WorldMap = "WorldMap"
    CalendarHeatmap = "CalendarHeatmap"
    TwoDimensionalHeatmap = "TwoDimensionalHeatmap"
    BoxPlot = "BoxPlot"


BreakdownType = Literal[
    "cohort", "person", "event", "event_metadata", "group", "session", "hogql", "data_warehouse",
    "data_warehouse_person_property", "revenue_analytics",
]


# --- Building blocks ----------------------------------------------------------------------------


class DateRange(SchemaModel):
    date_from: Optional[str] = None
    date_to: Optional[str] = None
    explicitDate: Optional[bool] = False


class PropertyFilter(SchemaModel):
    key: str
    value: Optional[Union[str, int, float, bool, list[Union[str, int, float, bool, None]]]] = None
    operator: Optional[PropertyOperator] = None
    type: PropertyFilterType = "event"
    label: Optional[str] = None
    group_type_index: Optional[int] = None


class PropertyGroupFilterValue(SchemaModel):
    type: Literal["AND", "OR"]
    values: list[Union["PropertyGroupFilterValue", PropertyFilter]]


class PropertyGroupFilter(SchemaModel):
    type: Literal["AND", "OR"]
    values: list[PropertyGroupFilterValue]


AnyPropertyFilters = Union[list[PropertyFilter], PropertyGroupFilter]


class QueryLogTags(SchemaModel):
    scene: Optional[str] = None
    productKey: Optional[str] = None


class EntityNode(SchemaModel):
    name: Optional[str] = None
    custom_name: Optional[str] = None
    math: Optional[MathType] = None
    math_property: Optional[str] = None
    math_property_type: Optional[str] = None
    math_hogql: Optional[str] = None
    math_group_type_index: Optional[Literal[0, 1, 2, 3, 4]] = None
    math_multiplier: Optional[float] = None
    math_property_revenue_currency: Optional[dict[str, Any]] = None
    properties: Optional[list[PropertyFilter]] = None
    fixedProperties: Optional[list[PropertyFilter]] = None
    optionalInFunnel: Optional[bool] = None
    version: Optional[float] = None


class EventsNode(EntityNode):
    kind: Literal["EventsNode"] = "EventsNode"
    event: Optional[str] = None
    limit: Optional[int] = None
    orderBy: Optional[list[str]] = None


class ActionsNode(EntityNode):
    kind: Literal["ActionsNode"] = "ActionsNode"
    id: int


class DataWarehouseNode(EntityNode):
    kind: Literal["DataWarehouseNode"] = "DataWarehouseNode"
    id: str
    table_name: str
    timestamp_field: str
    id_field: str
    distinct_id_field: str


AnyEntityNode = Annotated[Union[EventsNode, ActionsNode, DataWarehouseNode], Field(discriminator="kind")]


class InsightsQueryBase(SchemaModel):
    dateRange: Optional[DateRange] = None
    filterTestAccounts: Optional[bool] = False
    properties: Optional[AnyPropertyFilters] = []
    aggregation_group_type_index: Optional[int] = None
    samplingFactor: Optional[float] = None
    dataColorTheme: Optional[float] = None
    modifiers: Optional[dict[str, Any]] = None
    tags: Optional[QueryLogTags] = None
    version: Optional[float] = None


class Breakdown(SchemaModel):
    type: Optional[Literal["person", "event", "event_metadata", "group", "session", "hogql", "cohort", "revenue_analytics"]] = None
    property: Union[str, int]
    normalize_url: Optional[bool] = None
    group_type_index: Optional[int] = None
    histogram_bin_count: Optional[int] = None


class BreakdownFilter(SchemaModel):
    breakdown_type: Optional[BreakdownType] = "event"
    breakdown_limit: Optional[int] = Field(default=None, ge=1)
    breakdown: Optional[Union[str, int, list[Union[str, int]]]] = None
    breakdown_normalize_url: Optional[bool] = None
    breakdowns: Optional[list[Breakdown]] = Field(default=None, max_length=3)
    breakdown_group_type_index: Optional[int] = None
    breakdown_histogram_bin_count: Optional[int] = None
    breakdown_hide_other_aggregation: Optional[bool] = None


class CompareFilter(SchemaModel):
    compare: Optional[bool] = False
    compare_to: Optional[str] = None


class TrendsFormulaNode(SchemaModel):
    formula: str
    custom_name: Optional[str] = None


class TrendsFilter(SchemaModel):
    smoothingIntervals: Optional[int] = Field(default=1, ge=1)
    formula: Optional[str] = None
    formulas: Optional[list[str]] = None
    formulaNodes: Optional[list[TrendsFormulaNode]] = None
    display: Optional[ChartDisplayType] = ChartDisplayType.ActionsLineGraph
    showLegend: Optional[bool] = False
    showAlertThresholdLines: Optional[bool] = False
    breakdown_histogram_bin_count: Optional[int] = None
    aggregationAxisFormat: Optional[str] = "numeric"
    aggregationAxisPrefix: Optional[str] = None
    aggregationAxisPostfix: Optional[str] = None
    decimalPlaces: Optional[float] = None
    minDecimalPlaces: Optional[float] = None
    showValuesOnSeries: Optional[bool] = False
    showLabelsOnSeries: Optional[bool] = None
    showPercentStackView: Optional[bool] = False
    yAxisScaleType: Optional[Literal["log10", "linear"]] = "linear"
    showMultipleYAxes: Optional[bool] = False
    hiddenLegendIndexes: Optional[list[int]] = None
    resultCustomizationBy: Optional[Literal["value", "position"]] = "value"
    resultCustomizations: Optional[Any] = None
    goalLines: Optional[list[Any]] = None
    showConfidenceIntervals: Optional[bool] = None
    confidenceLevel: Optional[float] = None
    showTrendLines: Optional[bool] = None
    showMovingAverage: Optional[bool] = None
    movingAverageIntervals: Optional[float] = None
    detailedResultsAggregationType: Optional[Literal["total", "average", "median"]] = None


# --- Insight queries ----------------------------------------------------------------------------


class TrendsQuery(InsightsQueryBase):
    kind: Literal["TrendsQuery"] = "TrendsQuery"
    interval: Optional[IntervalType] = IntervalType.day
    # Buckets of `intervalCount` intervals (PostHog defines it on stickiness; accepted here too).
    intervalCount: Optional[int] = Field(default=None, ge=1)
    series: list[AnyEntityNode]
    trendsFilter: Optional[TrendsFilter] = None
    breakdownFilter: Optional[BreakdownFilter] = None
    compareFilter: Optional[CompareFilter] = None
    conversionGoal: Optional[Any] = None


class FunnelExclusionEventsNode(EventsNode):
    funnelFromStep: int
    funnelToStep: int


class FunnelExclusionActionsNode(ActionsNode):
    funnelFromStep: int
    funnelToStep: int


class FunnelsFilter(SchemaModel):
    exclusions: Optional[list[Annotated[Union[FunnelExclusionEventsNode, FunnelExclusionActionsNode], Field(discriminator="kind")]]] = []
    layout: Optional[Literal["horizontal", "vertical"]] = "vertical"
    binCount: Optional[int] = None
    breakdownAttributionType: Optional[Literal["first_touch", "last_touch", "all_events", "step"]] = "first_touch"
    breakdownAttributionValue: Optional[int] = None
    funnelAggregateByHogQL: Optional[str] = None
    funnelFromStep: Optional[int] = None
    funnelToStep: Optional[int] = None
    funnelOrderType: Optional[Literal["strict", "unordered", "ordered"]] = "ordered"
    funnelVizType: Optional[Literal["steps", "time_to_convert", "trends"]] = "steps"
    funnelWindowInterval: Optional[int] = 14
    funnelWindowIntervalUnit: Optional[Literal["second", "minute", "hour", "day", "week", "month"]] = "day"
    hiddenLegendBreakdowns: Optional[list[str]] = None
    funnelStepReference: Optional[Literal["total", "previous"]] = "total"
    useUdf: Optional[bool] = None


class FunnelsQuery(InsightsQueryBase):
    kind: Literal["FunnelsQuery"] = "FunnelsQuery"
    interval: Optional[IntervalType] = None
    series: list[AnyEntityNode]
    funnelsFilter: Optional[FunnelsFilter] = None
    breakdownFilter: Optional[BreakdownFilter] = None


class RetentionEntity(SchemaModel):
    id: Optional[Union[str, int]] = None
    type: Optional[Literal["events", "actions"]] = None
    kind: Optional[Literal["EventsNode", "ActionsNode"]] = None
    name: Optional[str] = None
    custom_name: Optional[str] = None
    order: Optional[int] = None
    uuid: Optional[str] = None
    properties: Optional[list[PropertyFilter]] = None


class RetentionFilter(SchemaModel):
    retentionType: Optional[Literal["retention_recurring", "retention_first_time", "retention_first_ever_occurrence"]] = None
    retentionReference: Optional[Literal["total", "previous"]] = None
    totalIntervals: Optional[int] = 8
    minimumOccurrences: Optional[int] = None
    returningEntity: Optional[RetentionEntity] = None
    targetEntity: Optional[RetentionEntity] = None
    period: Optional[Literal["Hour", "Day", "Week", "Month"]] = "Day"
    cumulative: Optional[bool] = None
    timeWindowMode: Optional[Literal["strict_calendar_dates", "24_hour_windows"]] = None
    meanRetentionCalculation: Optional[Literal["simple", "weighted", "none"]] = None


class RetentionQuery(InsightsQueryBase):
    kind: Literal["RetentionQuery"] = "RetentionQuery"
    retentionFilter: RetentionFilter
    breakdownFilter: Optional[BreakdownFilter] = None


class LifecycleFilter(SchemaModel):
    showValuesOnSeries: Optional[bool] = None
    toggledLifecycles: Optional[list[Literal["new", "resurrecting", "returning", "dormant"]]] = None
    showLegend: Optional[bool] = False
    stacked: Optional[bool] = True


class LifecycleQuery(InsightsQueryBase):
    kind: Literal["LifecycleQuery"] = "LifecycleQuery"
    interval: Optional[IntervalType] = IntervalType.day
    series: list[AnyEntityNode]
    lifecycleFilter: Optional[LifecycleFilter] = None


class StickinessCriteria(SchemaModel):
    operator: Literal["gte", "lte", "exact"]
    value: int


class StickinessFilter(SchemaModel):
    display: Optional[ChartDisplayType] = None
    showLegend: Optional[bool] = None
    showValuesOnSeries: Optional[bool] = None
    showMultipleYAxes: Optional[bool] = None
    hiddenLegendIndexes: Optional[list[int]] = None
    stickinessCriteria: Optional[StickinessCriteria] = None
    computedAs: Optional[Literal["non_cumulative", "cumulative"]] = None


class StickinessQuery(SchemaModel):
    kind: Literal["StickinessQuery"] = "StickinessQuery"
    dateRange: Optional[DateRange] = None
    filterTestAccounts: Optional[bool] = False
    properties: Optional[AnyPropertyFilters] = None
    samplingFactor: Optional[float] = None
    dataColorTheme: Optional[float] = None
    modifiers: Optional[dict[str, Any]] = None
    tags: Optional[QueryLogTags] = None
    version: Optional[float] = None
    interval: Optional[IntervalType] = IntervalType.day
    intervalCount: Optional[int] = None
    series: list[AnyEntityNode]
    stickinessFilter: Optional[StickinessFilter] = None
    compareFilter: Optional[CompareFilter] = None


class PathCleaningFilter(SchemaModel):
    alias: Optional[str] = None
    regex: Optional[str] = None


class PathsFilter(SchemaModel):
    edgeLimit: Optional[int] = 50
    pathsHogQLExpression: Optional[str] = None
    includeEventTypes: Optional[list[Literal["$pageview", "$screen", "custom_event", "hogql"]]] = None
    startPoint: Optional[str] = None
    endPoint: Optional[str] = None
    pathGroupings: Optional[list[str]] = None
    excludeEvents: Optional[list[str]] = None
    stepLimit: Optional[int] = 5
    pathReplacements: Optional[bool] = None
    localPathCleaningFilters: Optional[list[PathCleaningFilter]] = None
    minEdgeWeight: Optional[int] = None
    maxEdgeWeight: Optional[int] = None
    pathStartKey: Optional[str] = None
    pathEndKey: Optional[str] = None
    pathDropoffKey: Optional[str] = None


class FunnelPathsFilter(SchemaModel):
    funnelPathType: Optional[Literal["funnel_path_before_step", "funnel_path_between_steps", "funnel_path_after_step"]] = None
    funnelSource: FunnelsQuery
    funnelStep: Optional[int] = None


class PathsQuery(InsightsQueryBase):
    kind: Literal["PathsQuery"] = "PathsQuery"
    pathsFilter: PathsFilter
    funnelPathsFilter: Optional[FunnelPathsFilter] = None


# --- SQL and event listing ------------------------------------------------------------------------


class HogQLFilters(SchemaModel):
    properties: Optional[list[PropertyFilter]] = None
    dateRange: Optional[DateRange] = None
    filterTestAccounts: Optional[bool] = None


class DashboardFilter(SchemaModel):
    """A dashboard's `filters` (and `filters_override`), applied to the queries of its insights."""

    date_from: Optional[str] = None
    date_to: Optional[str] = None
    explicitDate: Optional[bool] = None
    properties: Optional[list[PropertyFilter]] = None
    breakdown_filter: Optional[BreakdownFilter] = None


class HogQLVariable(SchemaModel):
    variableId: str
    code_name: str
    value: Optional[Any] = None
    isNull: Optional[bool] = None


class HogQLQuery(SchemaModel):
    kind: Literal["HogQLQuery"] = "HogQLQuery"
    query: str
    filters: Optional[HogQLFilters] = None
    variables: Optional[dict[str, HogQLVariable]] = None
    values: Optional[dict[str, Any]] = None
    explain: Optional[bool] = None
    name: Optional[str] = None
    modifiers: Optional[dict[str, Any]] = None
    tags: Optional[QueryLogTags] = None
    version: Optional[float] = None


class EventsQuery(SchemaModel):
    kind: Literal["EventsQuery"] = "EventsQuery"
    select: list[str]
    where: Optional[list[str]] = None
    properties: Optional[list[PropertyFilter]] = None
    fixedProperties: Optional[list[PropertyFilter]] = None
    filterTestAccounts: Optional[bool] = None
    event: Optional[str] = None
    limit: Optional[int] = None
    offset: Optional[int] = None
    actionId: Optional[int] = None
    personId: Optional[str] = None
    before: Optional[str] = None
    after: Optional[str] = None
    orderBy: Optional[list[str]] = None
    source: Optional[Any] = None
    modifiers: Optional[dict[str, Any]] = None
    tags: Optional[QueryLogTags] = None
    version: Optional[float] = None


class ActorsQuery(SchemaModel):
    kind: Literal["ActorsQuery"] = "ActorsQuery"
    source: Optional[Any] = None
    select: Optional[list[str]] = None
    search: Optional[str] = None
    properties: Optional[list[PropertyFilter]] = None
    fixedProperties: Optional[list[PropertyFilter]] = None
    orderBy: Optional[list[str]] = None
    limit: Optional[int] = None
    offset: Optional[int] = None
    modifiers: Optional[dict[str, Any]] = None
    tags: Optional[QueryLogTags] = None
    version: Optional[float] = None


# --- Wrapper nodes ------------------------------------------------------------------------------

InsightQueryNode = Annotated[
    Union[TrendsQuery, FunnelsQuery, RetentionQuery, PathsQuery, StickinessQuery, LifecycleQuery],
    Field(discriminator="kind"),
]


class InsightVizNode(SchemaModel):
    kind: Literal["InsightVizNode"] = "InsightVizNode"
    source: InsightQueryNode
    full: Optional[bool] = None
    showHeader: Optional[bool] = None
    showTable: Optional[bool] = None
    showCorrelationTable: Optional[bool] = None
    showLastComputation: Optional[bool] = None
    showLastComputationRefresh: Optional[bool] = None
    showFilters: Optional[bool] = None
    showResults: Optional[bool] = None
    embedded: Optional[bool] = None
    suppressSessionAnalysisWarning: Optional[bool] = None
    hidePersonsModal: Optional[bool] = None
    hideTooltipOnScroll: Optional[bool] = None
    vizSpecificOptions: Optional[dict[str, Any]] = None
    version: Optional[float] = None


class DataVisualizationNode(SchemaModel):
    kind: Literal["DataVisualizationNode"] = "DataVisualizationNode"
    source: HogQLQuery
    display: Optional[ChartDisplayType] = None
    chartSettings: Optional[dict[str, Any]] = None
    tableSettings: Optional[dict[str, Any]] = None
    version: Optional[float] = None


class DataTableNode(SchemaModel):
    kind: Literal["DataTableNode"] = "DataTableNode"
    source: Annotated[
        Union[
            EventsQuery, HogQLQuery, ActorsQuery, TrendsQuery, FunnelsQuery, RetentionQuery, PathsQuery,
            StickinessQuery, LifecycleQuery,
        ],
        Field(discriminator="kind"),
    ]
    columns: Optional[list[str]] = None
    hiddenColumns: Optional[list[str]] = None
    pinnedColumns: Optional[list[str]] = None
    version: Optional[float] = None


class SavedInsightNode(SchemaModel):
    kind: Literal["SavedInsightNode"] = "SavedInsightNode"
    shortId: str


WRAPPER_KINDS = ("InsightVizNode", "DataVisualizationNode", "DataTableNode")


class QuerySchemaRoot(RootModel):
    root: Annotated[
        Union[
            InsightVizNode, DataVisualizationNode, DataTableNode, SavedInsightNode, TrendsQuery, FunnelsQuery,
            RetentionQuery, PathsQuery, StickinessQuery, LifecycleQuery, HogQLQuery, EventsQuery, ActorsQuery,
            EventsNode, ActionsNode,
        ],
        Field(discriminator="kind"),
    ]
