"""Public pages of shared insights: /shared/<token> and /embedded/<token>, plus `.json` and `.png`.

No login: a page is reached by its access token alone, or for password-protected shares by the
share token (a JWT in the `posthog_sharing_token` cookie or an `Authorization: Bearer` header)
that the unlock form obtains. Sessions are ignored.
"""
import json
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import prefetch_related_objects
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control
from django.utils.dateparse import parse_datetime
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from insights.dashboards.serializers import DashboardSerializer
from insights.dashboards.tiles import render_tiles, tile_insights
from insights.results import shown_query
from insights.serializers import InsightSerializer

from . import services, throttling
from .authentication import bearer_token
from .charts import build_chart, format_number
from .layout import layout
from .png import render_png
from .results import SharedResult, shared_result, shared_results
from .selectors import active_passwords, live_configuration, password_for_share_token
from .svg import render_svg
from .tokens import COOKIE_NAME, LIFETIME, encode_share_token

PAGE_CHART_SIZE = (800, 360)
IMAGE_SIZE = (1200, 630)
PAGE_OPTIONS = ("whitelabel", "noHeader", "showInspector", "legend", "detailed", "hideExtraDetails")
POLL_SECONDS = 3  # how often a page waiting for its result reloads


def not_found(request):
    return render(request, "sharing/not_found.html", status=404)


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def insight_title(insight) -> str:
    return insight.name or insight.derived_name or "Untitled insight"


@csrf_exempt  # the unlock form posts from a page that has no session to protect
@xframe_options_exempt  # shared insights are made to be embedded
@require_http_methods(["GET", "HEAD", "POST"])
def shared_insight(request, token: str, embedded: bool = False):
    access_token, _, extension = token.partition(".")
    embedded = embedded or "embedded" in request.GET
    configuration = live_configuration(access_token)
    if configuration is None or not configuration.team.organization.allow_publicly_shared_resources:
        return not_found(request)
    if not configuration.password_required:
        return _page(request, configuration, extension, embedded, None)
    if request.method == "POST":
        response = _unlock(request, configuration)
    else:
        share_token = _valid_share_token(request, configuration)
        response = _locked(request, extension) if share_token is None else _page(request, configuration, extension, embedded, share_token)
    patch_cache_control(response, private=True, no_store=True)
    return response


def _valid_share_token(request, configuration) -> str | None:
    """The request's share token when it was issued for this very share."""
    for token in (bearer_token(request), request.COOKIES.get(COOKIE_NAME)):
        password = password_for_share_token(token) if token else None
        if password is not None and password.sharing_configuration_id == configuration.id:
            return token
    return None


def _submitted_password(request) -> str | None:
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            return None
        value = body.get("password") if isinstance(body, dict) else None
    else:
        value = request.POST.get("password")
    return value if isinstance(value, str) else None


def _is_form_post(request) -> bool:
    """A plain HTML form (no JavaScript): answer with pages instead of JSON."""
    return request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data") and "text/html" in request.headers.get("Accept", "")


def _unlock(request, configuration):
    ip = client_ip(request)
    wait = throttling.seconds_until_allowed(configuration.access_token, ip)
    if wait:
        response = JsonResponse({"error": f"Too many attempts. Try again in {wait} seconds."}, status=429)
        response["Retry-After"] = str(wait)
        return response
    raw_password = _submitted_password(request)
    matched = None
    if raw_password is not None:
        matched = next((password for password in active_passwords(configuration) if password.check_password(raw_password)), None)
    services.record_login_attempt(configuration, ip, matched)
    if matched is None:
        throttling.record_failure(configuration.access_token, ip)
        if _is_form_post(request):
            return render(request, "sharing/unlock.html", {"error": "Incorrect password"}, status=401)
        return JsonResponse({"error": "Incorrect password"}, status=401)
    share_token = encode_share_token(matched)
    path = request.path.split(".")[0]
    response = redirect(path) if _is_form_post(request) else JsonResponse({"shareToken": share_token})
    response.set_cookie(
        COOKIE_NAME,
        share_token,
        max_age=int(LIFETIME.total_seconds()),
        path=path,
        httponly=True,
        secure=request.is_secure(),
        samesite="Lax",
    )
    return response


def _locked(request, extension: str):
    if extension == "json":
        return JsonResponse({"type": "unlock"})
    return render(request, "sharing/unlock.html")


def _page(request, configuration, extension: str, embedded: bool, share_token: str | None):
    if configuration.dashboard_id is not None:
        return _dashboard_page(request, configuration, extension, embedded, share_token)
    insight = configuration.insight
    options = configuration.settings or {}
    shown = shared_result(insight)
    chart = build_chart(insight.query, shown.fields)
    legend = bool(options.get("legend")) or chart.has_legend
    if extension == "png":
        width, height = IMAGE_SIZE
        shapes = layout(chart, width, height, title=insight_title(insight), legend=legend)
        return HttpResponse(render_png(shapes, width, height), content_type="image/png")

    services.record_anonymous_view(insight)
    wants_json = extension == "json" or (share_token is not None and request.headers.get("Accept") == "application/json")
    if wants_json:
        payload = _payload(configuration, shown, embedded, share_token)
        return JsonResponse(payload, encoder=DjangoJSONEncoder)

    width, height = PAGE_CHART_SIZE
    chart_svg = None
    if chart.kind in ("line", "bar"):
        chart_svg = render_svg(layout(chart, width, height, legend=legend), width, height, insight_title(insight))
    details = None
    if options.get("detailed") and chart.kind in ("line", "bar"):
        details = {
            "columns": ["Series", *chart.labels],
            "rows": [[item.label, *(format_number(value) for value in item.values)] for item in chart.series],
        }
    context = {
        "insight": insight,
        "title": insight_title(insight),
        "embedded": embedded,
        "options": options,
        "chart": chart,
        "chart_svg": chart_svg,
        "number": format_number(chart.number) if chart.number is not None else "",
        "details": details,
        "last_refresh": _as_datetime(shown.fields.get("last_refresh")),
        "pending": shown.pending,
        "poll_seconds": POLL_SECONDS,
        "error": shown.error,
        "image_url": None if configuration.password_required else request.build_absolute_uri(request.path.split(".")[0] + ".png"),
    }
    return render(request, "sharing/insight.html", context)


def _as_datetime(value):
    if isinstance(value, str):
        return parse_datetime(value)
    return value if isinstance(value, datetime) else None


def _payload(configuration, shown: SharedResult, embedded: bool, share_token: str | None) -> dict:
    """PostHog's `exported_data` for a shared insight."""
    insight = configuration.insight
    prefetch_related_objects([insight], "dashboard_tiles", "tagged_items__tag")
    options = configuration.settings or {}
    results = {insight.id: shown.fields}
    context = {"team": configuration.team, "is_shared": True, "hide_extra_details": bool(options.get("hideExtraDetails")), "results": results}
    payload = {
        "type": "embed" if embedded else "scene",
        "accessToken": configuration.access_token,
        "insight": InsightSerializer(insight, context=context).data,
        "themes": [],
    }
    payload |= {option: True for option in PAGE_OPTIONS if options.get(option)}
    if options.get("theme"):
        payload["theme"] = options["theme"]
    if share_token:
        payload["shareToken"] = share_token
    return payload


def _dashboard_page(request, configuration, extension: str, embedded: bool, share_token: str | None):
    """A shared dashboard: every tile with its result under the dashboard's filters, computed as
    the dashboard retrieve computes them (one call for all tiles), within the public-page limits."""
    if extension == "png":
        return not_found(request)  # dashboards have no share image
    dashboard = configuration.dashboard
    options = configuration.settings or {}
    tiles, insights, contexts = tile_insights(dashboard)
    shown = shared_results(insights, configuration.team, contexts)
    wants_json = extension == "json" or (share_token is not None and request.headers.get("Accept") == "application/json")
    if wants_json:
        context = {"team": configuration.team, "is_shared": True, "hide_extra_details": bool(options.get("hideExtraDetails"))}
        results = {insight_id: result.fields for insight_id, result in shown.items()}
        context["tiles"] = render_tiles(dashboard, refresh=None, context=context, computed=(tiles, insights, contexts, results))
        payload = {"type": "embed" if embedded else "scene", "accessToken": configuration.access_token,
                   "dashboard": DashboardSerializer(dashboard, context=context).data, "themes": []}
        payload |= {option: True for option in PAGE_OPTIONS if options.get(option)}
        if options.get("theme"):
            payload["theme"] = options["theme"]
        if share_token:
            payload["shareToken"] = share_token
        return JsonResponse(payload, encoder=DjangoJSONEncoder)

    by_id = {insight.id: insight for insight in insights}
    width, height = PAGE_CHART_SIZE
    shown_tiles = []
    for tile in tiles:
        if tile.insight_id is None:  # a text tile: its body, escaped by the template
            shown_tiles.append({"id": tile.id, "text": tile.text.body or "", "pending": False})
            continue
        insight, result = by_id[tile.insight_id], shown[tile.insight_id]
        chart = build_chart(contexts[insight.id].returned_query(shown_query(insight)), result.fields)
        title = insight_title(insight)
        svg = render_svg(layout(chart, width, height, legend=bool(options.get("legend")) or chart.has_legend), width, height, title) \
            if chart.kind in ("line", "bar") else None
        shown_tiles.append({"id": tile.id, "title": title, "chart": chart, "chart_svg": svg, "pending": result.pending, "error": result.error,
                            "number": format_number(chart.number) if chart.number is not None else ""})
    context = {"dashboard": dashboard, "title": dashboard.name or "Untitled dashboard", "embedded": embedded, "options": options,
               "tiles": shown_tiles, "pending": any(tile["pending"] for tile in shown_tiles), "poll_seconds": POLL_SECONDS}
    return render(request, "sharing/dashboard.html", context)
