"""Parsing and defaulting the WebService spec."""

from __future__ import annotations

from decimal import Decimal

import pytest

from herd import api
from herd.model import (
    CanaryStep,
    InvalidSpec,
    RequestMatch,
    duration_seconds,
    parse,
    quantity,
    with_pod_fields,
)


def body(**spec):
    return {
        "metadata": {"name": "shop", "namespace": "ns", "uid": "u1", "generation": 3},
        "spec": {"image": "shop:1", "app": "shop.main:app", **spec},
    }


def test_defaults_are_those_of_the_schema():
    ws = parse(body())
    assert (ws.interface, ws.port, ws.metrics_port, ws.replicas, ws.health_path) == (
        "wsgi",
        8000,
        9102,
        1,
        "/healthz",
    )
    assert ws.server.workload == "mixed" and ws.server.worker_class == "auto"
    assert ws.server.timeout_seconds == 30 and ws.server.graceful_timeout_seconds == 30
    assert ws.autoscaling.enabled is False and ws.autoscaling.max_replicas == 10
    assert ws.route is None and ws.canary is None and ws.metrics.source == "app"
    assert ws.generation == 3


def test_nested_defaults_apply_inside_present_objects():
    ws = parse(
        body(
            route={"ingress": {"host": "shop.example.com"}},
            canary={"steps": [{"setWeight": 10}, {"pause": {"duration": "1m"}}, {"pause": {}}]},
        )
    )
    assert ws.route.path == "/" and ws.route.class_name == "nginx"
    assert ws.route.max_body_size == "1m"
    assert ws.canary.analysis.interval_seconds == 30 and ws.canary.analysis.failure_limit == 2
    steps = ws.canary.steps
    assert steps[0].set_weight == 10
    assert steps[1].is_pause and steps[1].pause_seconds == 60
    assert steps[2].is_pause and steps[2].pause_seconds is None


@pytest.mark.parametrize(
    ("route", "source", "expected"),
    [
        (None, None, "app"),
        ({"ingress": {"host": "a.example.com"}}, None, "app"),
        ({"ingress": {"host": "a.example.com"}}, "ingress-nginx", "ingress-nginx"),
        ({"httpRoute": {"host": "a.example.com", "gateway": {"name": "g"}}}, None, "app"),
        ({"httpRoute": {"host": "a.example.com", "gateway": {"name": "g"}}}, "ingress-nginx", None),
        (None, "ingress-nginx", None),
        ({"ingress": {"host": "a.example.com"}}, "traefik", "traefik"),
        ({"httpRoute": {"host": "a.example.com", "gateway": {"name": "g"}}}, "traefik", "traefik"),
        (None, "traefik", None),
    ],
)
def test_each_router_names_the_metric_sources_it_feeds(route, source, expected):
    spec = {**({"route": route} if route else {}), "metrics": {"source": source} if source else {}}
    if expected is None:
        with pytest.raises(InvalidSpec, match="is not available with this spec.route"):
            parse(body(**spec))
    else:
        assert parse(body(**spec)).metrics.source == expected


def test_a_route_naming_no_router_is_invalid():
    with pytest.raises(InvalidSpec, match="names no router"):
        parse(body(route={}))


def test_the_stable_version_takes_only_the_pod_fields_of_its_snapshot():
    ws = parse(body(replicas=4, server={"workers": 3}))
    stable = with_pod_fields(ws, {"image": "shop:0", "app": "shop.old:app"})
    assert (stable.image, stable.app, stable.replicas) == ("shop:0", "shop.old:app", 4)
    assert stable.server.workers == 0  # the snapshot's own (defaulted) server, not the spec's


def test_apply_defaults_never_overwrites_what_the_user_wrote():
    spec = api.ROOT.apply_defaults(body(port=9000, server={"workers": 3}))["spec"]
    assert spec["port"] == 9000 and spec["server"]["workers"] == 3
    assert spec["server"]["workload"] == "mixed"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (60, 60),
        ("60", 60),
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("1500ms", 2),
    ],
)
def test_durations(value, seconds):
    assert duration_seconds(value) == seconds


@pytest.mark.parametrize("value", ["ten", "5x", "m5", ""])
def test_bad_durations(value):
    with pytest.raises(InvalidSpec):
        duration_seconds(value)


@pytest.mark.parametrize(
    ("value", "amount"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        (1, Decimal(1)),
        ("0.5", Decimal("0.5")),
        ("256Mi", Decimal(256 * 2**20)),
        ("1G", Decimal(10**9)),
        ("1e3", Decimal(1000)),
        # The whole grammar: every suffix Kubernetes accepts.
        ("1Ei", Decimal(2**60)),
        ("1E", Decimal(10**18)),
        ("1Pi", Decimal(2**50)),
        ("100u", Decimal("0.0001")),
        ("5n", Decimal("0.000000005")),
        (".5", Decimal("0.5")),
        ("1.5Gi", Decimal(3 * 2**29)),
    ],
)
def test_quantities(value, amount):
    assert quantity(value) == amount


@pytest.mark.parametrize("value", ["lots", "1Qi", "--1", "1e400", "9Ei", "1.2.3", ""])
def test_bad_quantities(value):
    with pytest.raises(InvalidSpec):
        quantity(value)


def test_missing_required_fields_are_invalid():
    with pytest.raises(InvalidSpec, match="spec.image is required"):
        parse({"metadata": {"name": "x"}, "spec": {"app": "a:b"}})


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ({"setHeaderRoute": {"name": "X-Canary"}}, RequestMatch("header", "X-Canary")),
        (
            {"setHeaderRoute": {"name": "X-Canary", "value": "on"}},
            RequestMatch("header", "X-Canary", "on"),
        ),
        ({"setCookieRoute": {"name": "canary"}}, RequestMatch("cookie", "canary")),
    ],
)
def test_header_and_cookie_route_steps(raw, parsed):
    canary = parse(body(canary={"steps": [raw, {"setWeight": 10}]})).canary
    assert canary is not None
    assert canary.steps == (CanaryStep(match=parsed), CanaryStep(set_weight=10))


def test_an_ab_test_is_the_match_then_its_passing_analyses():
    ab_test = {"match": {"cookie": {"name": "beta"}}, "analyses": 4}
    canary = parse(body(canary={"abTest": ab_test})).canary
    assert canary is not None
    assert canary.steps == (
        CanaryStep(match=RequestMatch("cookie", "beta")),
        CanaryStep(passes=4),
    )
    header = {"match": {"header": {"name": "X-Beta", "value": "1"}}}
    assert parse(body(canary={"abTest": header})).canary.steps[1] == CanaryStep(passes=3)


@pytest.mark.parametrize(
    ("canary", "message"),
    [
        ({"analysis": {}}, "exactly one of steps"),
        ({"abTest": {"match": {}}}, "exactly one of header or cookie"),
    ],
)
def test_an_ab_test_the_schema_would_refuse_is_invalid_offline(canary, message):
    with pytest.raises(InvalidSpec, match=message):
        parse(body(canary=canary))


def test_a_plan_with_two_match_routes_is_invalid():
    """One route stays in force until the rollout ends: a second would replace it mid-way."""
    steps = [
        {"setHeaderRoute": {"name": "X-A"}},
        {"setWeight": 10},
        {"setCookieRoute": {"name": "b"}},
    ]
    with pytest.raises(InvalidSpec, match="at most one step sets a header or cookie route"):
        parse(body(canary={"steps": steps}))


def test_a_plan_that_never_sends_the_canary_traffic_is_invalid():
    """Only zero weights would promote after zero analyses."""
    steps = [{"setWeight": 0}, {"pause": {"duration": 60}}]
    with pytest.raises(InvalidSpec, match="at least one setWeight above 0"):
        parse(body(canary={"steps": steps}))


def test_target_utilization_needs_the_app_source_and_the_builtin_engine():
    assert parse(body()).autoscaling.target_utilization is None
    assert parse(body(autoscaling={"targetUtilization": 1})).autoscaling.target_utilization == 1.0
    ingress = {"ingress": {"host": "shop.example.com"}}
    with pytest.raises(InvalidSpec, match="needs metrics.source app"):
        parse(
            body(
                route=ingress,
                metrics={"source": "ingress-nginx"},
                autoscaling={"targetUtilization": 0.7},
            )
        )
    with pytest.raises(InvalidSpec, match="keda engine scales on RPM only"):
        parse(body(autoscaling={"engine": "keda", "targetUtilization": 0.7}))


def test_metric_checks_and_the_comparison_with_the_stable_are_parsed_with_defaults():
    from herd.model import MetricCheck, StableComparison

    analysis = {
        "metrics": [{"name": "orders", "query": 'sum(x{ns="{{ namespace }}"})', "min": 1}],
        "compareWithStable": {"maxErrorRateIncrease": 2},
    }
    parsed = parse(body(canary={"steps": [{"setWeight": 10}], "analysis": analysis}))
    spec = parsed.canary.analysis
    assert spec.metrics == (MetricCheck("orders", 'sum(x{ns="{{ namespace }}"})', "min", 1.0),)
    assert spec.compare_with_stable == StableComparison(max_error_rate_increase=2.0)
    assert parse(body(canary={"steps": [{"setWeight": 10}]})).canary.analysis.metrics == ()


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"name": "a", "query": "x", "max": 1, "maxIncreaseOverStable": 1}, "exactly one of max"),
        ({"name": "a", "query": "x"}, "exactly one of max"),
        ({"name": "a", "query": "x{{{ name }}}", "max": 1}, "may use only"),
        ({"name": "a", "query": "{{ .Values }}", "max": 1}, "may use only"),
    ],
)
def test_a_metric_check_the_schema_would_refuse_is_invalid_offline(check, message):
    canary = {"steps": [{"setWeight": 10}], "analysis": {"metrics": [check]}}
    with pytest.raises(InvalidSpec, match=message):
        parse(body(canary=canary))
