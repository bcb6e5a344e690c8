"""PromQL per metric source, as text, and reading Prometheus's answers."""

from __future__ import annotations

import pytest

from herd.metric_sources import SOURCES, Target
from herd.prometheus import parse_response

SHOP = Target("ns", "shop")
CANARY = Target("ns", "shop", track="canary", window="2m")


@pytest.mark.parametrize(
    ("source", "query", "target", "expected"),
    [
        (
            "app",
            "requests_per_minute",
            SHOP,
            '60 * sum(rate(http_requests_total{namespace="ns", app_kubernetes_io_instance="shop", '
            'herd_dev_track="stable"}[1m]))',
        ),
        (
            "app",
            "error_rate",
            CANARY,
            '(sum(rate(http_requests_total{namespace="ns", app_kubernetes_io_instance="shop", '
            'herd_dev_track="canary", code=~"5.."}[2m])) or vector(0)) / '
            "sum(rate(http_requests_total{"
            'namespace="ns", app_kubernetes_io_instance="shop", herd_dev_track="canary"}[2m]))',
        ),
        (
            "app",
            "p99_latency_seconds",
            SHOP,
            "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{"
            'namespace="ns", app_kubernetes_io_instance="shop", herd_dev_track="stable"}[1m])))',
        ),
        (
            "app",
            "request_count",
            CANARY,
            'sum(increase(http_requests_total{namespace="ns", app_kubernetes_io_instance="shop", '
            'herd_dev_track="canary"}[2m]))',
        ),
        (
            "ingress-nginx",
            "requests_per_minute",
            SHOP,
            '60 * sum(rate(nginx_ingress_controller_requests{namespace="ns", ingress="shop", '
            'canary=""}[1m]))',
        ),
        (
            "ingress-nginx",
            "saturation_error_rate",
            CANARY,
            '(sum(rate(nginx_ingress_controller_requests{namespace="ns", ingress="shop", '
            'canary!="", status=~"502|503|504"}[2m])) or vector(0)) / '
            "sum(rate(nginx_ingress_controller_requests{"
            'namespace="ns", ingress="shop", canary!=""}[2m]))',
        ),
    ],
)
def test_promql(source, query, target, expected):
    assert getattr(SOURCES[source], query)(target) == expected


def test_label_values_are_escaped():
    query = SOURCES["app"].requests_per_minute(Target('a"b', "c\\d"))
    assert 'namespace="a\\"b"' in query and 'app_kubernetes_io_instance="c\\\\d"' in query


def vector(*values):
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {}, "value": [1700000000.0, v]} for v in values],
        },
    }


@pytest.mark.parametrize(
    ("body", "kind", "value"),
    [
        (vector("12.5"), "value", 12.5),
        (vector("0"), "value", 0.0),  # zero is a value, not "no data"
        (vector(), "empty", None),  # no series: no traffic yet
        (vector("NaN"), "nan", None),  # 0/0: an error rate over no requests
        (vector("+Inf"), "nan", None),
        (vector("1", "2"), "invalid", None),  # the query should aggregate to one series
        (
            {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}},
            "value",
            3.0,
        ),
        ({"status": "error", "errorType": "bad_data", "error": "parse error"}, "invalid", None),
    ],
)
def test_parse_response(body, kind, value):
    observation = parse_response(body)
    assert (observation.kind, observation.value) == (kind, value)
    assert observation.ok is (kind == "value")
