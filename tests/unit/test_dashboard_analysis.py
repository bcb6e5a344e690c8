"""The WebService page's Prometheus charts, as tables: the rollout's window, which Prometheus,
the range queries (the canary analysis's own), the SVG lines, the note in their place; the
range client and the API server's service proxy it reads an in-cluster Prometheus through."""

from __future__ import annotations

import json
import math

import pytest
from kubernetes.client import ApiClient, Configuration

from herd.api_errors import ApiError
from herd.dashboard import analysis
from herd.endpoints import in_cluster_service
from herd.kube import Kube, service_proxy_path
from herd.metric_sources import SOURCES, Target
from herd.observation import Series
from herd.prometheus import Prometheus, ThroughApiServer, parse_range_response
from herd.timestamps import rfc3339
from tests.support.http_stub import serving
from tests.support.webservices import paused, webservice

NOW = 1_764_000_000.0
START = NOW - 1200


def rolling(phase="Paused", **spec):
    ws = webservice(canary=paused(phase=phase, startTime=rfc3339(START)))
    ws["spec"].update(spec)
    return ws


# --- The window and the queries ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("canary", "window"),
    [
        (paused(startTime=None), None),
        (
            {"phase": "Paused", "startTime": rfc3339(START)},
            analysis.Window(START, NOW, 5, live=True),
        ),
        (
            {"phase": "Progressing", "startTime": rfc3339(NOW - 24 * 3600)},
            analysis.Window(NOW - 24 * 3600, NOW, 360, live=True),  # 240 points at most
        ),
        (
            {
                "phase": "Succeeded",
                "startTime": rfc3339(START),
                "lastProgressTime": rfc3339(START + 600),
            },
            analysis.Window(START, START + 600, 5),
        ),
        ({"phase": "RolledBack", "startTime": rfc3339(START)}, analysis.Window(START, NOW, 5)),
        (
            {"phase": "Progressing", "startTime": rfc3339(NOW)},
            analysis.Window(NOW, NOW + 5, 5, live=True),
        ),
    ],
    ids=["no-rollout", "paused", "a-day", "succeeded", "ended-unknown-when", "just-started"],
)
def test_rollout_window(canary, window):
    canary = {k: v for k, v in canary.items() if v is not None}
    assert analysis.rollout_window(webservice(canary=canary), NOW) == window


@pytest.mark.parametrize(
    ("metrics", "flag", "url"),
    [
        ({}, None, "http://prometheus-server.monitoring.svc:80"),
        ({"prometheusURL": "http://prom.obs.svc:9090"}, None, "http://prom.obs.svc:9090"),
        ({"prometheusURL": "http://prom.obs.svc:9090"}, "http://127.0.0.1:19090", None),
    ],
    ids=["chart-default", "the-spec", "the-flag-wins"],
)
def test_prometheus_url(metrics, flag, url):
    ws = webservice(canary=paused())
    ws["spec"]["metrics"] = metrics
    assert analysis.prometheus_url(ws, flag) == (url or flag)


@pytest.mark.parametrize(
    ("spec", "source", "rate_window", "step", "behind"),
    [
        ({}, "app", "30s", 5, ()),
        ({"metrics": {"source": "ingress-nginx"}}, "ingress-nginx", "30s", 5, ()),
        ({}, "app", "360s", 360, ()),  # a long rollout: each point's rate covers its step
        (  # Traefik names its series after the route: the page must know it
            {
                "metrics": {"source": "traefik"},
                "route": {"httpRoute": {"host": "a.example.com", "gateway": {"name": "gw"}}},
            },
            "traefik",
            "30s",
            5,
            ("httpRoute", ("shop", "gw")),
        ),
    ],
    ids=["app", "ingress-nginx", "step-longer-than-the-interval", "traefik"],
)
def test_range_queries_are_the_canary_analysis_queries_for_both_tracks(
    spec, source, rate_window, step, behind
):
    ws = rolling(**spec)
    queries = analysis.range_queries(ws, analysis.Window(START, NOW, step))
    built = SOURCES[source]

    def target(track):
        return Target("shop", "web", track, rate_window, *behind)

    assert queries == [
        analysis.RangeQuery("error_rate", "canary", built.error_rate(target("canary"))),
        analysis.RangeQuery("error_rate", "stable", built.error_rate(target("stable"))),
        analysis.RangeQuery("p99_latency", "canary", built.p99_latency_seconds(target("canary"))),
        analysis.RangeQuery("p99_latency", "stable", built.p99_latency_seconds(target("stable"))),
    ]


def test_the_analysis_interval_is_the_rate_window():
    ws = rolling()
    ws["spec"]["canary"]["analysis"]["intervalSeconds"] = 60
    queries = analysis.range_queries(ws, analysis.Window(START, NOW, 5))
    assert all("[60s]" in q.promql for q in queries)


# --- Range answers -----------------------------------------------------------------------------


def matrix(*series):
    return {
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"values": s} for s in series]},
    }


@pytest.mark.parametrize(
    ("body", "kind", "points"),
    [
        (matrix([[10, "0.5"], [15, "1"]]), "value", ((10.0, 0.5), (15.0, 1.0))),
        (matrix([[10, "NaN"], [15, "2"]]), "value", ((10.0, math.nan), (15.0, 2.0))),
        (matrix([[10, "NaN"], [15, "NaN"]]), "nan", ((10.0, math.nan), (15.0, math.nan))),
        (matrix(), "empty", ()),
        (matrix([]), "empty", ()),
        (matrix([[10, "1"]], [[10, "2"]]), "invalid", ()),
        ({"status": "success", "data": {"resultType": "vector", "result": []}}, "invalid", ()),
        ({"status": "error", "errorType": "bad_data", "error": "secret"}, "invalid", ()),
        (matrix([[10]]), "invalid", ()),
        ([1, 2], "invalid", ()),
    ],
    ids=[
        "samples",
        "nan-kept",
        "all-nan",
        "no-series",
        "no-samples",
        "two-series",
        "vector",
        "refused",
        "short-sample",
        "not-an-object",
    ],
)
def test_parse_range_response(body, kind, points):
    series = parse_range_response(body)
    assert series.kind == kind
    assert [(t, "nan" if math.isnan(v) else v) for t, v in series.points] == [
        (t, "nan" if math.isnan(v) else v) for t, v in points
    ]
    assert "secret" not in series.detail


def test_query_range_sends_the_window_and_parses_the_matrix():
    body = json.dumps(matrix([[1000, "0.25"]])).encode()
    with serving([(200, body)]) as (url, seen):
        series = Prometheus().query_range(url + "/", 'sum(rate(x{a="b"}[30s]))', 1000, 1600, 5)
    assert series == Series("value", ((1000.0, 0.25),))
    assert seen[0].startswith("/api/v1/query_range?query=sum%28rate%28x%7Ba%3D%22b%22")
    assert seen[0].endswith("&start=1000&end=1600&step=5")


@pytest.mark.parametrize(
    ("answers", "kind", "detail", "asked"),
    [
        ([(503, b"secret"), (200, json.dumps(matrix([[1, "1"]])).encode())], "value", "", 2),
        ([(500, b"secret")], "unreachable", "HTTP 500", 2),
        ([(302, b"secret")], "invalid", "HTTP 302", 1),  # a redirect is not followed
        ([(200, b"<html>secret</html>")], "invalid", "the answer is not JSON", 1),
    ],
    ids=["5xx-retried", "5xx-twice", "redirect", "not-json"],
)
def test_query_range_follows_the_rules_of_query(answers, kind, detail, asked):
    with serving(answers) as (url, seen):
        series = Prometheus(retries=1, backoff=0.01).query_range(url, "up", 0, 60, 5)
    assert (series.kind, len(seen)) == (kind, asked)
    assert detail in series.detail and "secret" not in series.detail


def test_query_range_credentials_go_to_their_own_origin_only(monkeypatch):
    body = json.dumps(matrix([[1, "1"]])).encode()
    with serving([(200, body)]) as (default, _), serving([(200, body)], "127.0.0.2") as (other, _):
        client = Prometheus(credentials=(default, "Bearer s3cret"))
        sent = {}
        request = client._http.request

        def recording(method, url, **kwargs):
            sent[url.split("/api")[0]] = kwargs["headers"].get("Authorization")
            return request(method, url, **kwargs)

        monkeypatch.setattr(client._http, "request", recording)
        assert client.query_range(default, "up", 0, 60, 5).kind == "value"
        assert client.query_range(other, "up", 0, 60, 5).kind == "value"
    assert sent == {default: "Bearer s3cret", other: None}


# --- The API server's service proxy ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        (
            "http://prometheus-server.monitoring.svc:80/api/v1/query_range",
            "/api/v1/namespaces/monitoring/services/prometheus-server:80/proxy/api/v1/query_range",
        ),
        (
            "http://prometheus-server.monitoring.svc/api/v1/query_range",
            "/api/v1/namespaces/monitoring/services/prometheus-server:80/proxy/api/v1/query_range",
        ),
        (
            "https://prom.obs.svc.cluster.local:9091/prometheus/api/v1/query",
            "/api/v1/namespaces/obs/services/https:prom:9091/proxy/prometheus/api/v1/query",
        ),
        (
            "http://Prom.OBS.svc:9090/",
            "/api/v1/namespaces/obs/services/prom:9090/proxy",
        ),
    ],
    ids=["chart-default", "default-port", "https-cluster-domain-prefix", "case-and-root"],
)
def test_service_proxy_path(url, path):
    assert service_proxy_path(url) == path


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:19090",
        "http://prometheus.example.com",
        "http://monitoring.svc:80",
        "http://prom..svc:80",
        "ftp://prom.obs.svc",
        "http://prom.obs.svc:99999",
    ],
    ids=["loopback", "public-name", "no-namespace", "empty-label", "no-default-port", "bad-port"],
)
def test_other_urls_are_reached_directly(url):
    assert in_cluster_service(url) is None
    assert analysis.proxy_needs(url) is None
    with pytest.raises(ValueError, match="names no in-cluster Service"):
        service_proxy_path(url)


def test_proxy_get_asks_the_api_server_and_returns_any_answer():
    with serving([(503, b"no endpoints available")]) as (url, seen):
        kube = Kube(ApiClient(Configuration(host=url)))
        answer = kube.proxy_get(
            "http://prometheus-server.monitoring.svc:80/api/v1/query_range", {"query": "up"}, 5
        )
    assert answer == (503, b"no endpoints available")
    assert seen == [
        "/api/v1/namespaces/monitoring/services/prometheus-server:80/proxy/api/v1/query_range"
        "?query=up"
    ]


@pytest.mark.parametrize(
    ("answer", "kind", "detail"),
    [
        ((200, json.dumps(matrix([[1, "0.5"]])).encode()), "value", ""),
        ((403, b'{"kind": "Status", "message": "secret"}'), "invalid", "HTTP 403"),
        ((503, b"secret"), "unreachable", "HTTP 503"),
        (
            ApiError(0, "Unreachable", "MaxRetryError"),
            "unreachable",
            "the Kubernetes API server's proxy: MaxRetryError",
        ),
    ],
    ids=["answered", "forbidden", "no-endpoints", "api-server-down"],
)
def test_through_the_api_server(answer, kind, detail):
    asked = []

    def proxy(url, fields, timeout):
        asked.append((url, fields["query"], timeout))
        if isinstance(answer, Exception):
            raise answer
        return answer

    url = "http://prometheus-server.monitoring.svc:80"
    series = ThroughApiServer(proxy, timeout=2).query_range(url, "up", 0, 60, 5)
    assert (series.kind, asked) == (kind, [(url + "/api/v1/query_range", "up", 2)])
    assert detail in series.detail and "secret" not in series.detail


# --- The charts --------------------------------------------------------------------------------

WINDOW = analysis.Window(1000.0, 1100.0, 10)


def answered(*points):
    return Series("value", tuple(points)) if points else Series("empty", detail="no series")


@pytest.mark.parametrize(
    ("canary", "stable", "segments", "dots", "latest"),
    [
        (
            answered((1000, 0.0), (1010, 0.5), (1020, 1.0)),
            answered((1090, 0.5), (1100, 0.5)),
            # top: 1.0 with a tenth of headroom, 110 high: y = 110 - v / 1.1 * 110
            (("0.0,110.0 20.0,60.0 40.0,10.0",), ("180.0,60.0 200.0,60.0",)),
            ((), ()),
            ("100.00%", "50.00%"),
        ),
        (
            answered((1000, 0.5), (1010, math.nan), (1020, 0.5), (1030, 0.5)),
            answered(),
            (("40.0,10.0 60.0,10.0",), ()),  # the highest sample sits a tenth under the top
            ((("0.0", "10.0"),), ()),
            ("50.00%", "no data"),
        ),
        (
            answered((1000, 0.5), (1010, 0.5), (1040, 0.5), (1050, 0.5)),  # no samples between
            answered((1000, math.inf)),
            (("0.0,10.0 20.0,10.0", "80.0,10.0 100.0,10.0"), ()),
            ((), ()),
            ("50.00%", "no data"),
        ),
    ],
    ids=["both-tracks", "nan-breaks-a-lone-point", "missing-samples-break"],
)
def test_line_chart(canary, stable, segments, dots, latest):
    chart = analysis.line_chart(
        "error_rate", {"canary": canary, "stable": stable}, WINDOW, {}, width=200, height=110
    )
    assert [line.track for line in chart.lines] == ["canary", "stable"]
    assert tuple(line.segments for line in chart.lines) == segments
    assert tuple(line.dots for line in chart.lines) == dots
    assert tuple(line.latest for line in chart.lines) == latest
    assert (chart.start, chart.end) == (rfc3339(1000), rfc3339(1100))


@pytest.mark.parametrize(
    ("metric", "values", "limits", "top", "threshold_y", "threshold"),
    [
        ("error_rate", [0.0, 0.0], {}, "100.00%", None, ""),  # all zero: the bottom edge
        ("error_rate", [0.001], {"maxErrorRate": 0.01}, "1.10%", "10.0", "max 1.00%"),
        ("error_rate", [0.022], {"maxErrorRate": 0.01}, "2.42%", "64.5", "max 1.00%"),
        ("p99_latency", [0.05], {"maxP99LatencyMs": 200}, "220 ms", "10.0", "max 200 ms"),
        ("p99_latency", [0.3], {}, "330 ms", None, ""),
    ],
    ids=["zeros", "under-the-limit", "over-the-limit", "latency-limit", "latency-no-limit"],
)
def test_a_chart_is_scaled_to_its_highest_sample_or_its_threshold(
    metric, values, limits, top, threshold_y, threshold
):
    points = answered(*((1000 + 10 * i, v) for i, v in enumerate(values)))
    chart = analysis.line_chart(
        metric, {"canary": points, "stable": answered()}, WINDOW, limits, height=110
    )
    assert (chart.top, chart.threshold_y, chart.threshold) == (top, threshold_y, threshold)


# --- The section: charts or a note -------------------------------------------------------------

ALL = [(m, t) for m in analysis.METRICS for t in analysis.TRACKS]
DEFAULT = "http://prometheus-server.monitoring.svc:80"


@pytest.mark.parametrize(
    ("url", "answers", "charts", "note"),
    [
        (DEFAULT, dict.fromkeys(ALL, answered((1000, 0.1))), 2, ""),
        (
            DEFAULT,
            {**dict.fromkeys(ALL, answered()), ALL[0]: answered((1000, 0.1))},
            2,
            "",
        ),
        (
            DEFAULT,
            dict.fromkeys(ALL, answered()),
            0,
            "Prometheus has no data for either track over this rollout.",
        ),
        (
            DEFAULT,
            {ALL[0]: Series("unreachable", detail=f"{DEFAULT}: HTTP 503")},
            0,
            f"Prometheus could not be read: {DEFAULT}: HTTP 503 (reading it through the API "
            "server needs get on services/proxy for service prometheus-server in namespace "
            "monitoring).",
        ),
        (
            "http://127.0.0.1:19090",
            {**dict.fromkeys(ALL, answered()), ALL[3]: Series("invalid", detail="x: HTTP 403")},
            0,
            "Prometheus could not be read: x: HTTP 403.",
        ),
    ],
    ids=["data", "one-track-only", "no-data", "unreachable-in-cluster", "refused-direct"],
)
def test_charts_or_a_note(url, answers, charts, note):
    section = analysis.charts(rolling(), url, WINDOW, answers)
    assert (len(section.charts), section.note) == (charts, note)


@pytest.mark.parametrize(
    ("url", "source"),
    [
        (DEFAULT, f"Prometheus at {DEFAULT}, through the Kubernetes API server's service proxy"),
        ("http://u:hunter2@127.0.0.1:19090", "Prometheus at http://127.0.0.1:19090, directly"),
    ],
)
def test_the_section_says_where_its_data_is_from_never_with_credentials(url, source):
    assert analysis.no_rollout(url).source == source


@pytest.mark.parametrize(("live", "refresh"), [(True, 5), (False, None)])
def test_a_live_rollout_asks_again_every_step_whatever_the_answer(live, refresh):
    # A pause changes nothing of the WebService: only this brings the page new points.
    window = analysis.Window(START, NOW, 5, live)
    for answers in (
        {},
        {
            (m, t): Series("value", ((START, 0.0),))
            for m in analysis.METRICS
            for t in analysis.TRACKS
        },
    ):
        assert (
            analysis.charts(rolling(), "http://127.0.0.1:19090", window, answers).refresh_seconds
            == refresh
        )
