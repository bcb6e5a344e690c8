"""The operator's side of its contract with herd-runtime equals the runtime's own: what a pod
is told (command, environment, ports) and what Prometheus is asked for (metric names)."""

import importlib
import importlib.metadata
import os
import pathlib
import tomllib

from herd import api, desired, model, pod_troubles
from herd.metric_sources import APP, SOURCES, Target
from herd.serving import runtime
from herd_runtime import check_python, http_metrics, memory, metrics_server, settings

RUNTIME = pathlib.Path(__file__).parents[2] / "apps/runtime"


def rendered_container() -> dict:
    body = {"metadata": {"name": "web", "namespace": "ns"}, "spec": {"image": "i", "app": "a:b"}}
    deployment = desired.desired(model.parse(body)).objects[0]
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_the_environment_the_operator_renders_is_what_the_runtime_reads():
    env = {e["name"]: e.get("value") for e in rendered_container()["env"]}
    assert runtime.METRICS_PORT_ENV == settings.METRICS_PORT_ENV
    assert runtime.HEALTH_PATH_ENV == settings.HEALTH_PATH_ENV
    assert runtime.MULTIPROC_DIR_ENV == settings.MULTIPROC_DIR_ENV
    read = settings.RuntimeSettings.from_env(env)
    assert read.metrics_port == api.SPEC.properties["metricsPort"].default
    assert read.health_path == api.SPEC.properties["healthPath"].default
    assert str(read.multiprocess_dir) == runtime.MULTIPROC_DIR
    assert runtime.METRICS_PATH == metrics_server.METRICS_PATH
    assert runtime.MEMORY_REPORT_ENV == settings.MEMORY_REPORT_ENV
    assert str(read.memory_report) == rendered_container()["terminationMessagePath"]


def test_the_operator_reads_the_memory_report_the_runtime_writes():
    assert runtime.MEMORY_REPORT_PREFIX == memory.REPORT_PREFIX
    read = pod_troubles.memory_report(memory.report_line(os.getpid(), 1796281200.0))
    assert read is not None and read.at == 1796281200.0
    # Measured a moment apart, so near rather than equal: this process allocates meanwhile.
    assert 0.5 < read.server / memory.memory(os.getpid()).pss < 2


def test_the_defaults_agree():
    assert api.SPEC.properties["metricsPort"].default == settings.DEFAULT_METRICS_PORT
    assert api.SPEC.properties["healthPath"].default == settings.DEFAULT_HEALTH_PATH


def test_the_command_and_config_exist_in_the_runtime():
    container = rendered_container()
    scripts = {e.name for e in importlib.metadata.entry_points(group="console_scripts")}
    assert container["command"] == [runtime.SERVE_COMMAND] and runtime.SERVE_COMMAND in scripts
    importlib.import_module(runtime.GUNICORN_CONFIG_MODULE)
    assert f"python:{runtime.GUNICORN_CONFIG_MODULE}" in container["args"]


def test_the_app_source_queries_the_metrics_the_runtime_exports():
    # prometheus_client exposes a counter named X as X_total.
    assert f"{http_metrics.REQUESTS._name}_total" == runtime.REQUESTS_METRIC
    assert http_metrics.DURATION._name == runtime.DURATION_METRIC
    assert runtime.STATUS_CODE_LABEL in http_metrics.REQUESTS._labelnames
    app, target = SOURCES["app"], Target("ns", "web")
    assert runtime.REQUESTS_METRIC in app.requests_per_minute(target)
    assert f"{runtime.DURATION_METRIC}_bucket" in app.p99_latency_seconds(target)
    assert http_metrics.in_flight()._name == runtime.IN_FLIGHT_METRIC
    assert http_metrics.in_flight()._multiprocess_mode == "livesum"
    assert runtime.IN_FLIGHT_METRIC in APP.in_flight(target)
    assert f"{runtime.DURATION_METRIC}_sum" in APP.concurrency(target)


def test_the_injected_runtime_starts_the_module_the_package_has():
    body = {"metadata": {"name": "web", "namespace": "ns"}, "spec": {"image": "i", "app": "a:b"}}
    body["spec"]["runtime"] = "inject"
    pod = desired.desired(model.parse(body)).objects[0]["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == [runtime.PYTHON, "-m", runtime.SERVE_MODULE]
    assert (RUNTIME / "src" / runtime.SERVE_MODULE / "__main__.py").is_file()
    check = pod["initContainers"][1]["command"][1]
    assert check == f"{runtime.INJECT_DIR}/{check_python.__name__.replace('.', '/')}.py"


def test_one_minimum_python_for_the_package_its_check_and_the_operator():
    project = tomllib.loads((RUNTIME / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == f">={runtime.MINIMUM_PYTHON}"
    assert tuple(int(p) for p in runtime.MINIMUM_PYTHON.split(".")) == check_python.MINIMUM
