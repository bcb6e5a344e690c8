"""PromQL per metric source, as text, and reading Prometheus's answers."""

from __future__ import annotations

import re

import pytest

from herd.metric_sources import SOURCES, Target, target, traefik_normalize
from herd.model import parse
from herd.prometheus import parse_response

SHOP = Target("ns", "shop")
CANARY = Target("ns", "shop", track="canary", window="2m")
SHOP_INGRESS = Target("ns", "shop", route="ingress")
CANARY_INGRESS = Target("ns", "shop", "canary", "2m", route="ingress")
SHOP_HTTP = Target("ns", "shop", route="httpRoute", gateway=("gw-ns", "web"))
CANARY_HTTP = Target("ns", "shop", "canary", "2m", route="httpRoute", gateway=("gw-ns", "web"))
TRAEFIK_HTTP = "httproute-ns-shop-gw-gw-ns-web-ep-.+-svc-ns-"


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
            "concurrency",
            SHOP,
            "sum(rate(http_request_duration_seconds_sum{"
            'namespace="ns", app_kubernetes_io_instance="shop", herd_dev_track="stable"}[1m]))',
        ),
        (
            "app",
            "in_flight",
            Target("ns", "shop", window="6s"),
            "sum(avg_over_time(http_requests_in_flight{"
            'namespace="ns", app_kubernetes_io_instance="shop", herd_dev_track="stable"}[6s]))',
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
        (
            "traefik",
            "requests_per_minute",
            SHOP_INGRESS,
            "60 * sum(rate(traefik_service_requests_total{"
            'service="ns-shop-shop-http@kubernetesingressnginx"}[1m]))',
        ),
        (
            "traefik",
            "error_rate",
            CANARY_INGRESS,
            "(sum(rate(traefik_service_requests_total{"
            'service="ns-shop-shop-http-canary@kubernetesingressnginx", code=~"5.."}[2m])) '
            "or vector(0)) / sum(rate(traefik_service_requests_total{"
            'service="ns-shop-shop-http-canary@kubernetesingressnginx"}[2m]))',
        ),
        (
            "traefik",
            "p99_latency_seconds",
            CANARY_INGRESS,
            "histogram_quantile(0.99, sum by (le) (rate(traefik_service_request_duration_seconds"
            '_bucket{service="ns-shop-shop-http-canary@kubernetesingressnginx"}[2m])))',
        ),
        (
            "traefik",
            "request_count",
            SHOP_HTTP,
            "sum(increase(traefik_service_requests_total{"
            f'service=~"{TRAEFIK_HTTP}shop-[0-9]+@kubernetesgateway"}}[1m]))',
        ),
        (
            "traefik",
            "saturation_error_rate",
            CANARY_HTTP,
            "(sum(rate(traefik_service_requests_total{"
            f'service=~"{TRAEFIK_HTTP}shop-canary-[0-9]+@kubernetesgateway", '
            'code=~"502|503|504"}[2m])) or vector(0)) / '
            "sum(rate(traefik_service_requests_total{"
            f'service=~"{TRAEFIK_HTTP}shop-canary-[0-9]+@kubernetesgateway"}}[2m]))',
        ),
        (
            "traefik",
            "p99_latency_seconds",
            SHOP_HTTP,
            "histogram_quantile(0.99, sum by (le) (rate(traefik_service_request_duration_seconds"
            f'_bucket{{service=~"{TRAEFIK_HTTP}shop-[0-9]+@kubernetesgateway"}}[1m])))',
        ),
    ],
)
def test_promql(source, query, target, expected):
    assert getattr(SOURCES[source], query)(target) == expected


@pytest.mark.parametrize(
    ("name", "normalized"),
    [("ns-shop-shop-http", "ns-shop-shop-http"), ("a.b--c_d", "a-b-c-d"), ("-x-", "x")],
)
def test_traefik_normalize(name, normalized):
    assert traefik_normalize(name) == normalized


#: Service names as Traefik v3.7 exported them on the local real node for an HTTPRoute
#: `shop` in `ns` on Gateway ns/web (tests/integration/real/test_traefik_metrics.py): the rule
#: index is followed by a hash of Traefik's own.
SEEN_STABLE = (
    "httproute-ns-shop-gw-ns-web-ep-web-0-78eb568e60c5b100b753-svc-ns-shop-0@kubernetesgateway"
)
SEEN_CANARY = SEEN_STABLE.replace("svc-ns-shop-0", "svc-ns-shop-canary-1")


@pytest.mark.parametrize(
    ("track", "matches", "not_matches"),
    [
        ("stable", SEEN_STABLE, SEEN_CANARY),
        ("canary", SEEN_CANARY, SEEN_STABLE),
    ],
)
def test_each_tracks_traefik_regex_matches_its_service_as_seen_and_not_the_other(
    track, matches, not_matches
):
    route = {"httpRoute": {"host": "a.example.com", "gateway": {"name": "web"}}}
    body = {
        "metadata": {"name": "shop", "namespace": "ns"},
        "spec": {"image": "i", "app": "a:b", "route": route},
    }
    query = SOURCES["traefik"].request_count(target(parse(body), track))
    [regex] = re.findall(r'service=~"([^"]+)"', query)
    assert re.fullmatch(regex, matches)
    assert re.fullmatch(regex, not_matches) is None


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (None, Target("ns", "shop", "canary", "2m")),
        ({"ingress": {"host": "a.example.com"}}, Target("ns", "shop", "canary", "2m", "ingress")),
        (
            {"httpRoute": {"host": "a.example.com", "gateway": {"name": "web"}}},
            Target("ns", "shop", "canary", "2m", "httpRoute", ("ns", "web")),
        ),
        (
            {"httpRoute": {"host": "a.example.com", "gateway": {"name": "web", "namespace": "g"}}},
            Target("ns", "shop", "canary", "2m", "httpRoute", ("g", "web")),
        ),
    ],
)
def test_target_follows_the_route(route, expected):
    spec = {"image": "shop:1", "app": "shop.main:app", **({"route": route} if route else {})}
    ws = parse({"metadata": {"name": "shop", "namespace": "ns", "uid": "u"}, "spec": spec})
    assert target(ws, "canary", "2m") == expected


def test_traefik_needs_a_route():
    with pytest.raises(ValueError, match="needs a route"):
        SOURCES["traefik"].request_count(SHOP)


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
