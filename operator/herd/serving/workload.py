"""The Deployment, Service and PodDisruptionBudget of one track of a WebService."""

from __future__ import annotations

from typing import Any

from herd import kinds, objectmeta
from herd.model import WebService
from herd.serving import runtime
from herd.serving.tuning import PRE_STOP_SLEEP_SECONDS, ServerConfig

CONTAINER = "app"
TMP_DIR = "/tmp"
#: UID/GID of the app user in Herd's images; any non-root UID works for images that allow it.
APP_UID = 10001
#: tmpfs sizes; memory-backed volumes count against the container's memory limit.
TMP_SIZE = "64Mi"
METRICS_SIZE = "32Mi"
MIN_READY_SECONDS = 5

_GUNICORN_CLASS = {
    "sync": "sync",
    "gthread": "gthread",
    "gevent": "gevent",
    "uvicorn": "uvicorn_worker.UvicornWorker",
}


def server_args(ws: WebService, config: ServerConfig) -> list[str]:
    """The app-server command line: herd-serve execs exactly this, so the pod spec shows
    every tuning value that runs."""
    args = [
        "gunicorn",
        "--config",
        f"python:{runtime.GUNICORN_CONFIG_MODULE}",
        "--bind",
        f"0.0.0.0:{ws.port}",
        "--worker-class",
        _GUNICORN_CLASS[config.worker_class],
        "--workers",
        str(config.workers),
    ]
    if config.worker_class == "gthread":
        args += ["--threads", str(config.threads)]
    args += [
        "--timeout",
        str(config.timeout_seconds),
        "--graceful-timeout",
        str(config.graceful_timeout_seconds),
        "--keep-alive",
        str(config.keep_alive_seconds),
        "--max-requests",
        str(config.max_requests),
        "--max-requests-jitter",
        str(config.max_requests_jitter),
        # The heartbeat file is fchmod-ed every second: keep it on tmpfs, not the overlay disk.
        "--worker-tmp-dir",
        TMP_DIR,
        # Only the Service (and the ingress behind it) reaches the pod: trust its X-Forwarded-*.
        "--forwarded-allow-ips",
        "*",
        ws.app,
    ]
    return args


def _env(ws: WebService, config: ServerConfig) -> list[dict[str, Any]]:
    """Herd's variables for herd-runtime, then the user's (whose names never collide: the
    schema reserves Herd's)."""
    return [
        {"name": runtime.WORKERS_ENV, "value": str(config.workers)},
        {"name": runtime.MULTIPROC_DIR_ENV, "value": runtime.MULTIPROC_DIR},
        {"name": runtime.METRICS_PORT_ENV, "value": str(ws.metrics_port)},
        {"name": runtime.HEALTH_PATH_ENV, "value": ws.health_path},
        *(dict(e) for e in ws.env),
    ]


def _probe(ws: WebService, period: int, failures: int, timeout: int = 2) -> dict[str, Any]:
    return {
        "httpGet": {"path": ws.health_path, "port": "http"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": timeout,
    }


def _resources(ws: WebService) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if ws.resources.requests:
        resources["requests"] = dict(ws.resources.requests)
    if ws.resources.limits:
        resources["limits"] = dict(ws.resources.limits)
    return resources


def pod_template(ws: WebService, config: ServerConfig, track: str = "stable") -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": ws.image,
        "command": [runtime.SERVE_COMMAND],
        "args": server_args(ws, config),
        "env": _env(ws, config),
        "ports": [
            {"name": "http", "containerPort": ws.port, "protocol": "TCP"},
            {"name": "metrics", "containerPort": ws.metrics_port, "protocol": "TCP"},
        ],
        "readinessProbe": _probe(ws, period=5, failures=3),
        "livenessProbe": _probe(ws, period=10, failures=6, timeout=5),
        # Up to two minutes to import the app before liveness applies.
        "startupProbe": _probe(ws, period=2, failures=60),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SLEEP_SECONDS}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "tmp", "mountPath": TMP_DIR},
            {"name": "metrics", "mountPath": runtime.MULTIPROC_DIR},
        ],
    }
    if ws.image_pull_policy:
        container["imagePullPolicy"] = ws.image_pull_policy
    resources = _resources(ws)
    if resources:
        container["resources"] = resources
    return {
        "metadata": {
            "labels": objectmeta.labels(ws, track),
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(ws.metrics_port),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": {
            "containers": [container],
            "terminationGracePeriodSeconds": config.termination_grace_period_seconds,
            "enableServiceLinks": False,
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": APP_UID,
                "runAsGroup": APP_UID,
                "fsGroup": APP_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "volumes": [
                {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": TMP_SIZE}},
                {"name": "metrics", "emptyDir": {"medium": "Memory", "sizeLimit": METRICS_SIZE}},
            ],
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": objectmeta.selector(ws, track)},
                }
            ],
        },
    }


def revision(
    ws: WebService, config: ServerConfig, stable_template: dict[str, Any] | None = None
) -> str:
    """The version's revision: the hash of its pod template as the stable track has it, so
    a version keeps its revision whichever track runs it."""
    return objectmeta.revision(stable_template or pod_template(ws, config))


def deployment(
    ws: WebService,
    config: ServerConfig,
    replicas: int,
    name: str | None = None,
    track: str = "stable",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    template = pod_template(ws, config, track)
    stable_template = template if track == "stable" else None
    template["metadata"]["labels"][objectmeta.REVISION_LABEL] = revision(
        ws, config, stable_template
    )
    return {
        **kinds.DEPLOYMENT.type_meta(),
        "metadata": objectmeta.metadata(ws, name or ws.name, track, annotations),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": objectmeta.selector(ws, track)},
            "revisionHistoryLimit": 5,
            # A new pod counts as available, and an old one may go, only once ingress
            # controllers have had time to add it: Traefik, measured on the local real node,
            # answered 503 (every server fenced) when the old pods left the moment the new
            # ones were Ready.
            "minReadySeconds": MIN_READY_SECONDS,
            "strategy": {
                "type": "RollingUpdate",
                # Never drop below the desired count: new pods come up before old ones leave.
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
            },
            "template": template,
        },
    }


def service(
    ws: WebService,
    name: str | None = None,
    track: str = "stable",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        **kinds.SERVICE.type_meta(),
        "metadata": objectmeta.metadata(ws, name or ws.name, track, annotations),
        "spec": {
            "type": "ClusterIP",
            "selector": objectmeta.selector(ws, track),
            "ports": [
                {"name": "http", "port": ws.port, "targetPort": "http", "protocol": "TCP"},
                {
                    "name": "metrics",
                    "port": ws.metrics_port,
                    "targetPort": "metrics",
                    "protocol": "TCP",
                },
            ],
        },
    }


def pod_disruption_budget(ws: WebService) -> dict[str, Any]:
    return {
        **kinds.POD_DISRUPTION_BUDGET.type_meta(),
        "metadata": objectmeta.metadata(ws, ws.name),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": objectmeta.selector(ws)},
            # A pod that is not Ready protects nothing: let drains evict it.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
