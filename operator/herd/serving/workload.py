"""The Deployment, Service and PodDisruptionBudget of one track of a WebService."""

from __future__ import annotations

from typing import Any

from herd import kinds, objectmeta
from herd.model import WebService
from herd.serving import runtime
from herd.serving.tuning import PRE_STOP_SLEEP_SECONDS, ServerConfig

CONTAINER = "app"
#: The name of the container port herd-runtime serves the metrics on.
METRICS_PORT = "metrics"
#: The init containers of an injected runtime: the copy from the runtime image, then the app
#: image's Python checking it can run the copy (herd_runtime.check_python).
INJECT_CONTAINER = "herd-runtime"
CHECK_CONTAINER = "herd-runtime-check"
RUNTIME_VOLUME = "herd-runtime"
#: The copied packages take 5.8 MB on disk once the check has compiled them (docs/runtime.md).
RUNTIME_SIZE = "64Mi"
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
        *(["--preload"] if config.preload else []),
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
    schema reserves Herd's). An injected runtime goes first on the user's PYTHONPATH."""
    herds = [
        {"name": runtime.WORKERS_ENV, "value": str(config.workers)},
        {"name": runtime.MULTIPROC_DIR_ENV, "value": runtime.MULTIPROC_DIR},
        {"name": runtime.METRICS_PORT_ENV, "value": str(ws.metrics_port)},
        {"name": runtime.HEALTH_PATH_ENV, "value": ws.health_path},
        {"name": runtime.MEMORY_REPORT_ENV, "value": runtime.MEMORY_REPORT_PATH},
    ]
    users = [dict(e) for e in ws.env]
    if ws.runtime == "inject":
        theirs = next((e for e in users if e["name"] == "PYTHONPATH"), None)
        path = runtime.INJECT_DIR
        if theirs is not None:
            users.remove(theirs)
            path = f"{path}:{theirs['value']}"  # a value: herd.model refuses valueFrom
        herds.append({"name": "PYTHONPATH", "value": path})
    return [*herds, *users]


def _restricted() -> dict[str, Any]:
    """A container's securityContext under the restricted Pod Security Standard."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _injecting(ws: WebService, resources: dict[str, Any]) -> list[dict[str, Any]]:
    """The init containers that put herd-runtime into a pod whose image lacks it. They take
    the app container's resources, so the pod asks for no more than without them."""

    def mount() -> dict[str, Any]:  # one each: `herd render` prints shared dicts as YAML aliases
        return {"name": RUNTIME_VOLUME, "mountPath": runtime.INJECT_DIR}

    copy = {
        "name": INJECT_CONTAINER,
        "image": ws.runtime_image,
        "command": ["cp", "-R", f"{runtime.INJECTED_LIBRARY}/.", f"{runtime.INJECT_DIR}/"],
        "securityContext": _restricted(),
        "volumeMounts": [mount()],
    }
    check = {
        "name": CHECK_CONTAINER,
        "image": ws.image,
        "command": [runtime.PYTHON, runtime.CHECK_SCRIPT],
        # A Python too old to run the check at all still leaves its words for the operator.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": _restricted(),
        "volumeMounts": [mount()],
    }
    if ws.image_pull_policy:
        check["imagePullPolicy"] = ws.image_pull_policy
    for container in (copy, check):
        if resources:
            container["resources"] = {kind: dict(v) for kind, v in resources.items()}
    return [copy, check]


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
    injected = ws.runtime == "inject"
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": ws.image,
        "command": [runtime.PYTHON, "-m", runtime.SERVE_MODULE]
        if injected
        else [runtime.SERVE_COMMAND],
        "args": server_args(ws, config),
        "env": _env(ws, config),
        "ports": [
            {"name": "http", "containerPort": ws.port, "protocol": "TCP"},
            {"name": METRICS_PORT, "containerPort": ws.metrics_port, "protocol": "TCP"},
        ],
        "readinessProbe": _probe(ws, period=5, failures=3),
        "livenessProbe": _probe(ws, period=10, failures=6, timeout=5),
        # Up to two minutes to import the app before liveness applies.
        "startupProbe": _probe(ws, period=2, failures=60),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SLEEP_SECONDS}}},
        # The runtime's memory report while it runs; a crash's last log lines once it exits
        # of its own accord (it empties the report then).
        "terminationMessagePath": runtime.MEMORY_REPORT_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": _restricted(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": TMP_DIR},
            {"name": "metrics", "mountPath": runtime.MULTIPROC_DIR},
        ],
    }
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": TMP_SIZE}},
        {"name": "metrics", "emptyDir": {"medium": "Memory", "sizeLimit": METRICS_SIZE}},
    ]
    if ws.image_pull_policy:
        container["imagePullPolicy"] = ws.image_pull_policy
    resources = _resources(ws)
    if resources:
        container["resources"] = resources
    pod: dict[str, Any] = {}
    if injected:
        pod["initContainers"] = _injecting(ws, resources)
        container["volumeMounts"].append(
            {"name": RUNTIME_VOLUME, "mountPath": runtime.INJECT_DIR, "readOnly": True}
        )
        volumes.append({"name": RUNTIME_VOLUME, "emptyDir": {"sizeLimit": RUNTIME_SIZE}})
    return {
        "metadata": {
            "labels": objectmeta.labels(ws, track),
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(ws.metrics_port),
                "prometheus.io/path": runtime.METRICS_PATH,
            },
        },
        "spec": {
            **pod,
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
            "volumes": volumes,
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
                    "targetPort": METRICS_PORT,
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
