"""What the operator and herd-runtime (apps/runtime, inside every app image) agree on: the
environment the operator renders for it, and the metrics it exports that the `app` metric
source queries. herd-runtime states its side in `herd_runtime.settings` and
`herd_runtime.http_metrics`; tests/unit/test_runtime_contract.py holds the two equal."""

from __future__ import annotations

#: The launcher every container runs, and the gunicorn config module it needs.
SERVE_COMMAND = "herd-serve"
GUNICORN_CONFIG_MODULE = "herd_runtime.gunicorn_config"

#: An injected runtime (spec.runtime: inject): the app image's Python runs the package, since
#: the image has no herd-serve script; the runtime image holds the packages at
#: INJECTED_LIBRARY (apps/runtime/Dockerfile), copied into the pod at INJECT_DIR.
PYTHON = "python3"
SERVE_MODULE = "herd_runtime"
INJECTED_LIBRARY = "/opt/herd-runtime/lib"
INJECT_DIR = "/herd/runtime"
#: The oldest Python herd-runtime runs on (its requires-python).
MINIMUM_PYTHON = "3.11"
#: The script, inside the copied package, that checks the image's Python can run it.
CHECK_SCRIPT = f"{INJECT_DIR}/herd_runtime/check_python.py"

METRICS_PORT_ENV = "HERD_METRICS_PORT"
#: Where herd-runtime serves the metrics, on the metrics port.
METRICS_PATH = "/metrics"
HEALTH_PATH_ENV = "HERD_HEALTH_PATH"
#: Where gunicorn's worker processes share metric files (prometheus_client's multiprocess mode).
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
MULTIPROC_DIR = "/run/herd/metrics"

#: The file herd-runtime keeps its memory report in (herd_runtime.memory): the app container's
#: termination message, which the kubelet hands on even after an OOM kill.
MEMORY_REPORT_ENV = "HERD_MEMORY_REPORT"
MEMORY_REPORT_PATH = "/dev/termination-log"
MEMORY_REPORT_PREFIX = "herd-memory "

#: gunicorn's own variable for the worker count; Herd sets it to the tuned value.
WORKERS_ENV = "WEB_CONCURRENCY"
#: Variables only Herd sets: a user's value would silently break metrics, health or tuning.
RESERVED_ENV_PREFIX = "HERD_"
RESERVED_ENV = (MULTIPROC_DIR_ENV, WORKERS_ENV)

#: The request counter as Prometheus stores it, its status-code label, and the latency histogram.
REQUESTS_METRIC = "http_requests_total"
STATUS_CODE_LABEL = "code"
DURATION_METRIC = "http_request_duration_seconds"
#: Requests the app serves now, summed over a pod's live workers (a gauge).
IN_FLIGHT_METRIC = "http_requests_in_flight"
