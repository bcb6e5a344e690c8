"""Rendering: the objects of a WebService, and the production defaults they carry."""

from __future__ import annotations

import pytest
import yaml

from herd.desired import Tracks, desired
from herd.kinds import Ref
from herd.model import InvalidSpec, RequestMatch, parse
from herd.objectmeta import REVISION_LABEL
from herd.settings import Settings


def ws(**spec):
    return parse(
        {
            "metadata": {"name": "shop", "namespace": "ns", "uid": "u1", "generation": 1},
            "spec": {"image": "shop:1", "app": "shop.main:app", **spec},
        }
    )


def by_kind(state):
    return {o["kind"]: o for o in state.objects}


def container(state):
    return by_kind(state)["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def test_minimal_spec_renders_deployment_and_service_only():
    state = desired(ws())
    assert sorted(by_kind(state)) == ["Deployment", "Service"]
    assert {(r.kind, r.name) for r in state.absent} == {
        ("Ingress", "shop"),
        ("PodDisruptionBudget", "shop"),
        ("ScaledObject", "shop"),
        ("PodMonitor", "shop"),
        ("Deployment", "shop-canary"),
        ("Service", "shop-canary"),
        ("Ingress", "shop-canary"),
        ("HTTPRoute", "shop"),
    }
    assert state.url == "http://shop.ns.svc.cluster.local:8000"


def test_every_tuning_value_is_on_the_command_line():
    state = desired(ws(server={"workload": "io"}, resources={"limits": {"cpu": "2"}}))
    args = container(state)["args"]
    flags = dict(zip(args[1:-1:2], args[2:-1:2], strict=True))
    assert args[0] == "gunicorn" and args[-1] == "shop.main:app"
    assert flags["--worker-class"] == "gthread"
    assert flags["--workers"] == "5" and flags["--threads"] == "64"
    assert flags["--keep-alive"] == "75" and flags["--timeout"] == "30"
    assert flags["--graceful-timeout"] == "30" and flags["--max-requests"] == "5000"
    assert {"name": "WEB_CONCURRENCY", "value": "5"} in container(state)["env"]


def test_asgi_runs_the_uvicorn_worker_without_threads():
    args = container(desired(ws(interface="asgi")))["args"]
    assert args[args.index("--worker-class") + 1] == "uvicorn_worker.UvicornWorker"
    assert "--threads" not in args


#: The worker classes every released herd-runtime can load. An app image carries its own copy
#: of herd-runtime, maybe older than the operator: a class it lacks crash-loops the pod.
#: herd-serve substitutes its recycling uvicorn worker itself (herd_runtime.workers).
LOADABLE_BY_EVERY_RUNTIME = {"sync", "gthread", "gevent", "uvicorn_worker.UvicornWorker"}


@pytest.mark.parametrize(
    ("spec", "worker_class", "max_requests", "jitter", "preload"),
    [
        ({}, "gthread", "5000", "500", False),
        # An image's own herd-runtime may predate the draining worker: no automatic limit.
        ({"interface": "asgi"}, "uvicorn_worker.UvicornWorker", "0", "0", False),
        (
            {"interface": "asgi", "server": {"maxRequests": 200, "preload": True}},
            "uvicorn_worker.UvicornWorker",
            "200",
            "20",
            True,
        ),
        ({"server": {"workload": "cpu", "preload": True}}, "sync", "5000", "500", True),
        ({"server": {"workerClass": "gevent"}}, "gevent", "5000", "500", False),
        (  # the injected runtime is the operator's own: it drains at the limit
            {"runtime": "inject", "interface": "asgi"},
            "uvicorn_worker.UvicornWorker",
            "5000",
            "500",
            False,
        ),
    ],
)
def test_recycling_and_preload_on_the_command_line(
    spec, worker_class, max_requests, jitter, preload
):
    args = container(desired(ws(**spec)))["args"]
    assert args[args.index("--worker-class") + 1] == worker_class
    assert worker_class in LOADABLE_BY_EVERY_RUNTIME
    assert args[args.index("--max-requests") + 1] == max_requests
    assert args[args.index("--max-requests-jitter") + 1] == jitter
    assert ("--preload" in args) is preload


def test_pod_is_restricted_and_drains_gracefully():
    state = desired(ws(server={"gracefulTimeoutSeconds": 20}))
    deployment = by_kind(state)["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    c = container(state)
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {v["name"]: v["emptyDir"]["medium"] for v in pod["volumes"]} == {
        "tmp": "Memory",
        "metrics": "Memory",
    }
    sleep = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] >= sleep + 20
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_user_env_follows_herds():
    env = container(desired(ws(env=[{"name": "DB", "value": "x"}])))["env"]
    assert [e["name"] for e in env][-1] == "DB" and {"name": "DB", "value": "x"} in env


@pytest.mark.parametrize("name", ["WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR", "HERD_X"])
def test_herds_own_variables_are_refused(name):
    """A user's WEB_CONCURRENCY or HERD_METRICS_PORT would silently break tuning or metrics."""
    with pytest.raises(InvalidSpec, match="set by Herd for its runtime"):
        ws(env=[{"name": name, "value": "9"}])


def test_ingress_carries_tuned_timeouts_and_user_annotations_win():
    state = desired(
        ws(
            server={"timeoutSeconds": 50},
            route={
                "ingress": {
                    "host": "shop.example.com",
                    "tlsSecretName": "shop-tls",
                    "annotations": {
                        "nginx.ingress.kubernetes.io/proxy-body-size": "5m",
                        "team": "a",
                    },
                }
            },
        )
    )
    ingress = by_kind(state)["Ingress"]
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "60"
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "5m"
    assert notes["team"] == "a"
    assert ingress["spec"]["tls"] == [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert state.url == "https://shop.example.com/"


@pytest.mark.parametrize(("replicas", "has_pdb"), [(0, False), (1, False), (2, True)])
def test_disruption_budget_only_with_a_second_pod(replicas, has_pdb):
    assert ("PodDisruptionBudget" in by_kind(desired(ws(replicas=replicas)))) is has_pdb


def test_every_object_is_owned_and_labelled():
    for obj in desired(ws(replicas=2, route={"ingress": {"host": "a.example.com"}})).objects:
        meta = obj["metadata"]
        assert meta["ownerReferences"][0]["uid"] == "u1"
        assert meta["ownerReferences"][0]["controller"] is True
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "herd"
        assert meta["labels"]["app.kubernetes.io/instance"] == "shop"


def test_revision_changes_with_the_pod_template_only():
    first = desired(ws()).revision
    assert desired(ws()).revision == first
    assert desired(ws(replicas=3)).revision == first
    assert desired(ws(image="shop:2")).revision != first
    labels = by_kind(desired(ws()))["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert labels[REVISION_LABEL] == first


@pytest.mark.parametrize(
    ("written", "operator_default", "rendered"),
    [
        (None, "nginx", "nginx"),  # the operator's default class
        ("internal", "nginx", "internal"),  # the user's choice wins
        (None, "", None),  # no class at all: the cluster's default IngressClass
    ],
)
def test_ingress_class(written, operator_default, rendered):
    ingress = {"host": "a.example.com", **({"className": written} if written else {})}
    service = parse(
        {
            "metadata": {"name": "shop", "namespace": "ns", "uid": "u1"},
            "spec": {"image": "shop:1", "app": "shop.main:app", "route": {"ingress": ingress}},
        },
        Settings(ingress_class=operator_default),
    )
    assert by_kind(desired(service))["Ingress"]["spec"].get("ingressClassName") == rendered


def test_keda_engine_renders_a_scaled_object_on_rpm():
    state = desired(
        ws(
            autoscaling={
                "enabled": True,
                "engine": "keda",
                "minReplicas": 2,
                "maxReplicas": 8,
                "targetRPMPerReplica": 900,
            },
        )
    )
    scaled = by_kind(state)["ScaledObject"]
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "herd.dev/v1alpha1",
        "kind": "WebService",
        "name": "shop",
    }
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (2, 8)
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["metadata"]["serverAddress"] == Settings().prometheus_url
    assert trigger["metadata"]["threshold"] == "900"
    assert trigger["metadata"]["query"].startswith("60 * sum(rate(http_requests_total{")
    assert ("ScaledObject", "shop") not in {(r.kind, r.name) for r in state.absent}


def canary_tracks(weight, match=None, **spec):
    stable = ws(**spec)
    canary = ws(**{**spec, "image": "shop:2"})
    return stable, Tracks(stable=stable, canary=canary, weight=weight, match=match)


def test_rollout_renders_a_canary_deployment_service_and_weighted_ingress():
    stable, tracks = canary_tracks(20, replicas=4, route={"ingress": {"host": "shop.example.com"}})
    state = desired(stable, tracks)
    names = {(o["kind"], o["metadata"]["name"]) for o in state.objects}
    assert {
        ("Deployment", "shop-canary"),
        ("Service", "shop-canary"),
        ("Ingress", "shop-canary"),
    } <= names
    canary = next(
        o
        for o in state.objects
        if o["metadata"]["name"] == "shop-canary" and o["kind"] == "Deployment"
    )
    assert canary["spec"]["replicas"] == 1  # 20 % of 4, rounded up
    assert canary["spec"]["selector"]["matchLabels"]["herd.dev/track"] == "canary"
    assert canary["spec"]["template"]["spec"]["containers"][0]["image"] == "shop:2"
    stable_deployment = next(
        o for o in state.objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "shop"
    )
    assert stable_deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "shop:1"
    canary_ingress = next(
        o
        for o in state.objects
        if o["kind"] == "Ingress" and o["metadata"]["name"] == "shop-canary"
    )
    notes = canary_ingress["metadata"]["annotations"]
    assert notes == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "20",
    }
    assert canary_ingress["spec"]["rules"][0]["host"] == "shop.example.com"
    assert canary["spec"]["template"]["metadata"]["labels"][REVISION_LABEL] != state.revision


@pytest.mark.parametrize(
    "route",
    [
        {"ingress": {"host": "shop.example.com"}},
        {"httpRoute": {"host": "shop.example.com", "gateway": {"name": "public"}}},
    ],
)
def test_a_canary_at_weight_zero_gets_no_route(route):
    """Before its first weight (pods starting) and after a rollback: no canary Ingress, no
    canary backend. A controller routes a second, non-canary Ingress for the host as its own."""
    stable, tracks = canary_tracks(0, route=route)
    state = desired(stable, tracks)
    assert "shop-canary" in {o["metadata"]["name"] for o in state.objects if o["kind"] == "Service"}
    assert not [o for o in state.objects if o["kind"] == "Ingress" and "canary" in str(o)]
    assert Ref("Ingress", "ns", "shop-canary") in state.absent
    for route in (o for o in state.objects if o["kind"] == "HTTPRoute"):
        assert [b["name"] for b in route["spec"]["rules"][0]["backendRefs"]] == ["shop"]


def test_gateway_api_routes_with_one_weighted_httproute():
    gateway = {"host": "shop.example.com", "gateway": {"name": "public", "namespace": "infra"}}
    stable, tracks = canary_tracks(30, route={"httpRoute": gateway})
    state = desired(stable, tracks)
    assert "Ingress" not in {o["kind"] for o in state.objects}
    route = by_kind(state)["HTTPRoute"]
    assert route["spec"]["parentRefs"][0]["name"] == "public"
    assert route["spec"]["rules"][0]["backendRefs"] == [
        {"name": "shop", "port": 8000, "weight": 70},
        {"name": "shop-canary", "port": 8000, "weight": 30},
    ]
    plain = by_kind(desired(stable))["HTTPRoute"]
    assert plain["spec"]["rules"][0]["backendRefs"] == [
        {"name": "shop", "port": 8000, "weight": 100}
    ]
    assert ("Ingress", "shop") in {(r.kind, r.name) for r in state.absent}


INGRESS = {"ingress": {"host": "shop.example.com"}}
HTTP_ROUTE = {"httpRoute": {"host": "shop.example.com", "gateway": {"name": "public"}}}
NGINX = "nginx.ingress.kubernetes.io/"


def canary_ingress_notes(state):
    found = [
        o for o in state.objects if o["kind"] == "Ingress" and "canary" in o["metadata"]["name"]
    ]
    return found[0]["metadata"]["annotations"] if found else None


@pytest.mark.parametrize(
    ("weight", "match", "notes"),
    [
        (
            0,
            RequestMatch("header", "X-Canary", "on"),
            {"canary-weight": "0", "canary-by-header": "X-Canary", "canary-by-header-value": "on"},
        ),
        (
            10,
            RequestMatch("header", "X-Canary"),
            {"canary-weight": "10", "canary-by-header": "X-Canary"},
        ),
        (
            10,
            RequestMatch("cookie", "canary"),
            {"canary-weight": "10", "canary-by-cookie": "canary"},
        ),
        (0, None, None),  # no traffic at all: no canary Ingress
    ],
)
def test_a_header_or_cookie_route_is_rendered_on_the_canary_ingress(weight, match, notes):
    """Even at weight 0: the machine sets the match only once the canary is ready."""
    stable, tracks = canary_tracks(weight, match, route=INGRESS)
    found = canary_ingress_notes(desired(stable, tracks))
    expected = (
        None
        if notes is None
        else {f"{NGINX}canary": "true"} | {NGINX + k: v for k, v in notes.items()}
    )
    assert found == expected


@pytest.mark.parametrize(
    ("weight", "match", "header", "weighted"),
    [
        (
            0,
            RequestMatch("header", "X-Canary", "on"),
            {"type": "Exact", "name": "X-Canary", "value": "on"},
            [{"name": "shop", "port": 8000, "weight": 100}],
        ),
        (
            10,
            RequestMatch("header", "X-Canary"),
            {"type": "Exact", "name": "X-Canary", "value": "always"},
            [
                {"name": "shop", "port": 8000, "weight": 90},
                {"name": "shop-canary", "port": 8000, "weight": 10},
            ],
        ),
        (
            10,
            RequestMatch("cookie", "canary.v2"),
            {
                "type": "RegularExpression",
                "name": "Cookie",
                "value": r"(^|;\s*)canary\.v2=always(;|$)",
            },
            [
                {"name": "shop", "port": 8000, "weight": 90},
                {"name": "shop-canary", "port": 8000, "weight": 10},
            ],
        ),
    ],
)
def test_a_header_or_cookie_route_is_an_httproute_rule_to_the_canary_only(
    weight, match, header, weighted
):
    stable, tracks = canary_tracks(weight, match, route=HTTP_ROUTE)
    pinned, rest = by_kind(desired(stable, tracks))["HTTPRoute"]["spec"]["rules"]
    path = {"type": "PathPrefix", "value": "/"}
    assert pinned["matches"] == [{"path": path, "headers": [header]}]
    assert pinned["backendRefs"] == [{"name": "shop-canary", "port": 8000}]
    assert rest["matches"] == [{"path": path}]
    assert rest["backendRefs"] == weighted
    assert pinned["timeouts"] == rest["timeouts"]
    assert "&id" not in yaml.safe_dump(pinned["matches"] + rest["matches"])  # nothing shared


def test_the_cookie_pattern_matches_only_that_cookie_set_to_always():
    import re

    from herd.routing.gateway import header_match

    pattern = re.compile(header_match(RequestMatch("cookie", "canary.v2"))["value"])
    assert pattern.search("canary.v2=always")
    assert pattern.search("a=1; canary.v2=always; b=2")
    assert not pattern.search("canary.v2=never")
    assert not pattern.search("canaryxv2=always")
    assert not pattern.search("my-canary.v2=always")
    assert not pattern.search("canary.v2=alwaysnot")


def test_a_version_has_the_same_revision_on_either_track():
    stable, tracks = canary_tracks(20)
    canary_deployment = next(
        o for o in desired(stable, tracks).objects if o["metadata"]["name"] == "shop-canary"
    )
    assert canary_deployment["spec"]["template"]["metadata"]["labels"][REVISION_LABEL] == (
        desired(tracks.canary).revision
    )


def injected(**spec):
    return parse(
        {
            "metadata": {"name": "shop", "namespace": "ns", "uid": "u1", "generation": 1},
            "spec": {"image": "shop:1", "app": "shop.main:app", "runtime": "inject", **spec},
        },
        Settings(runtime_image="registry.example/herd-runtime:9"),
    )


def pod(state):
    return by_kind(state)["Deployment"]["spec"]["template"]["spec"]


def test_an_image_with_the_runtime_gets_no_init_containers():
    assert "initContainers" not in pod(desired(ws()))
    assert container(desired(ws()))["command"] == ["herd-serve"]


def test_an_injected_runtime_is_copied_checked_and_mounted_read_only():
    spec = pod(desired(injected(resources={"limits": {"cpu": "1", "memory": "512Mi"}})))
    copy, check = spec["initContainers"]
    assert copy["image"] == "registry.example/herd-runtime:9"
    assert copy["command"] == ["cp", "-R", "/opt/herd-runtime/lib/.", "/herd/runtime/"]
    assert check["image"] == "shop:1"
    assert check["command"] == ["python3", "/herd/runtime/herd_runtime/check_python.py"]
    assert check["terminationMessagePolicy"] == "FallbackToLogsOnError"
    app = spec["containers"][0]
    assert app["command"] == ["python3", "-m", "herd_runtime"]
    assert app["args"][0] == "gunicorn"
    assert {"name": "herd-runtime", "mountPath": "/herd/runtime", "readOnly": True} in app[
        "volumeMounts"
    ]
    assert {"name": "herd-runtime", "emptyDir": {"sizeLimit": "64Mi"}} in spec["volumes"]
    for init in (copy, check):
        # No more than the app asks for, and as restricted as the app.
        assert init["resources"] == app["resources"]
        assert init["securityContext"] == app["securityContext"]
        assert init["securityContext"] is not app["securityContext"]
        assert init["volumeMounts"] == [{"name": "herd-runtime", "mountPath": "/herd/runtime"}]


@pytest.mark.parametrize(
    ("env", "pythonpath"),
    [
        ([], "/herd/runtime"),
        ([{"name": "PYTHONPATH", "value": "/app/src"}], "/herd/runtime:/app/src"),
    ],
)
def test_the_injected_runtime_goes_first_on_the_users_pythonpath(env, pythonpath):
    rendered = container(desired(injected(env=[*env, {"name": "DB", "value": "x"}])))["env"]
    assert [e["value"] for e in rendered if e["name"] == "PYTHONPATH"] == [pythonpath]
    assert rendered[-1] == {"name": "DB", "value": "x"}


def test_an_injected_runtime_refuses_a_pythonpath_it_could_not_extend():
    pythonpath = {"name": "PYTHONPATH", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}
    with pytest.raises(InvalidSpec, match="env PYTHONPATH: runtime inject .* not valueFrom"):
        injected(env=[pythonpath])
    ws(env=[pythonpath])  # without injection it is the user's to set as they like


def test_switching_to_an_injected_runtime_is_a_new_revision():
    labels = lambda s: by_kind(desired(s))["Deployment"]["spec"]["template"]["metadata"]  # noqa: E731
    assert labels(ws())["labels"][REVISION_LABEL] != labels(injected())["labels"][REVISION_LABEL]


def test_an_injected_pod_renders_without_yaml_aliases():
    """`herd render` prints a dict shared by two containers as an anchor and an alias."""
    import yaml

    text = yaml.safe_dump_all(desired(injected()).objects)
    assert "&id" not in text and "*id" not in text
