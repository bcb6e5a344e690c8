"""The chart's Grafana dashboard, PrometheusRule and PodMonitor values, without the cluster: the
values schema, the PodMonitor values as the operator's flags read them, the ConfigMap holding
the dashboard file as it is, the rules through `promtool check rules` and
`promtool test rules`, and every dashboard query answered by a real Prometheus over a TSDB of
synthetic series. A missing helm, prometheus or promtool fails these tests with the reason."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.harness import prometheus as prom
from bench.harness.appservers import free_port
from bench.harness.cluster import REPO, ClusterUnavailable, pins, tools_bin
from herd import cli
from herd.settings import Settings

CHART = REPO / "charts" / "herd"
DASHBOARD = CHART / "dashboards" / "herd.json"
RULES_TEST = Path(__file__).parent / "monitoring" / "herd_rules_test.yaml"
RELEASE, RELEASE_NAMESPACE = "herd", "herd-system"


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed: run hack/install-system-deps.sh (Debian package prometheus)",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        return tools_bin() / "helm"
    except ClusterUnavailable as error:
        pytest.fail(f"helm could not be built: {error}", pytrace=False)


def helm_template(helm: Path, *values: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [
            str(helm),
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            RELEASE_NAMESPACE,
            # Offline, helm assumes an old Kubernetes, below the chart's kubeVersion.
            "--kube-version",
            pins()["KUBERNETES_VERSION"],
            *values,
        ],
        text=True,
        capture_output=True,
        timeout=60,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"helm template {' '.join(values)} failed:\n{done.stderr}")
    return done


def rendered(helm: Path, *values: str) -> dict[str, dict[str, Any]]:
    """The chart's objects by 'Kind/name'."""
    docs = yaml.safe_load_all(helm_template(helm, *values).stdout)
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs if d}


# --- The values. ---


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([], id="defaults"),
        pytest.param(
            [
                "--set",
                "grafana.dashboards.enabled=true",
                "--set",
                "grafana.dashboards.labelValue=1",
            ],
            id="label-value-as-number",
        ),
        pytest.param(
            [
                *("--set", "grafana.dashboards.label=example.com/dashboard"),
                *("--set", "grafana.dashboards.namespace=monitoring"),
                *("--set", "grafana.dashboards.annotations.grafana_folder=Herd"),
            ],
            id="dashboard-label-namespace-annotations",
        ),
        pytest.param(
            [
                *("--set", "metrics.prometheusRule.enabled=true"),
                *("--set", "metrics.prometheusRule.labels.release=kube-prometheus-stack"),
                *("--set", "metrics.prometheusRule.alertLabels.team=platform"),
                *("--set", "metrics.prometheusRule.operatorJob=kubernetes-pods"),
                *("--set", "metrics.prometheusRule.runbookURL=https://wiki.example.com/herd"),
            ],
            id="rule-labels-job-runbook",
        ),
        pytest.param(
            [
                *("--set", "metrics.podMonitors.enabled=true"),
                *("--set", "metrics.podMonitors.labels.release=kube-prometheus-stack"),
                *("--set", "metrics.podMonitors.labels.example\\.com/team=platform"),
            ],
            id="pod-monitors-labels",
        ),
    ],
)
def test_values_schema_accepts_the_monitoring_values(helm, values):
    helm_template(helm, *values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "grafana.dashboards.enabled=yes"], "enabled"),
        (["--set", "grafana.dashboards.label=not a key!"], "label"),
        (["--set", "grafana.dashboards.labelValue=-x-"], "labelValue"),
        (["--set", "grafana.dashboards.namespace=Monitoring"], "namespace"),
        (["--set", "grafana.dashboards.folder=Herd"], "folder"),
        (["--set", "grafana.datasource=x"], "datasource"),
        (["--set", "metrics.prometheusRule.enabled=1"], "enabled"),
        (["--set", "metrics.prometheusRule.runbookURL=docs/operations.md"], "runbookURL"),
        (["--set", "metrics.prometheusRule.runbookURL=https://x/ops#alerts"], "runbookURL"),
        (["--set", "metrics.prometheusRule.severity=page"], "severity"),
        (["--set", "metrics.podMonitors.enabled=yes"], "enabled"),
        (["--set", "metrics.podMonitors.labels.release=-kps-"], "podMonitors"),
        (["--set", "metrics.podMonitors.labels.not a key=x"], "not a key"),
    ],
)
def test_values_schema_rejects_bad_monitoring_values(helm, values, message):
    done = helm_template(helm, *values, check=False)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def test_lint_with_everything_on(helm):
    done = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART)]
        + [f"--set={v}.enabled=true" for v in ("metrics.prometheusRule", "grafana.dashboards")]
        + ["--set=metrics.serviceMonitor.enabled=true"],
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_nothing_for_grafana_or_the_prometheus_operator_by_default(helm):
    kinds = {name.split("/")[0] for name in rendered(helm)}
    assert "PrometheusRule" not in kinds
    assert not any("dashboards" in name for name in rendered(helm))


# --- The dashboard's ConfigMap. ---


def test_the_configmap_ships_the_dashboard_file_as_it_is(helm):
    objects = rendered(
        helm,
        *("--set", "grafana.dashboards.enabled=true"),
        *("--set", "grafana.dashboards.label=example.com/dashboard"),
        *("--set", "grafana.dashboards.labelValue=yes"),
        *("--set", "grafana.dashboards.namespace=monitoring"),
    )
    configmap = objects[f"ConfigMap/{RELEASE}-dashboards"]

    assert configmap["data"] == {"herd.json": DASHBOARD.read_text()}
    assert configmap["metadata"]["labels"]["example.com/dashboard"] == "yes"
    assert configmap["metadata"]["namespace"] == "monitoring"


def test_the_sidecars_default_label(helm):
    objects = rendered(helm, "--set", "grafana.dashboards.enabled=true")
    configmap = objects[f"ConfigMap/{RELEASE}-dashboards"]

    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == RELEASE_NAMESPACE


def test_the_servicemonitor_keeps_the_webservices_namespace_label(helm):
    objects = rendered(helm, "--set", "metrics.serviceMonitor.enabled=true")
    [endpoint] = objects[f"ServiceMonitor/{RELEASE}"]["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True


def operator_settings(helm: Path, *values: str) -> Settings:
    """What the operator the chart runs is told, read by its own command line."""
    deployment = rendered(helm, *values)[f"Deployment/{RELEASE}"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return cli.operator_settings(cli.parser().parse_args(container["args"]))


def test_pod_monitors_are_off_by_default(helm):
    assert operator_settings(helm).pod_monitors is False


def test_the_pod_monitor_values_reach_the_operator(helm):
    settings = operator_settings(
        helm,
        *("--set", "metrics.podMonitors.enabled=true"),
        *("--set", "metrics.podMonitors.labels.release=kps"),
        *("--set", "metrics.podMonitors.labels.example\\.com/team=platform"),
    )
    assert settings.pod_monitors is True
    assert sorted(settings.pod_monitor_labels) == [
        ("example.com/team", "platform"),
        ("release", "kps"),
    ]


# --- The rules. ---


def rules_file(helm: Path, directory: Path, *values: str) -> Path:
    rule = rendered(helm, "--set", "metrics.prometheusRule.enabled=true", *values)[
        f"PrometheusRule/{RELEASE}"
    ]
    path = directory / "herd-rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    return path


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], cwd=cwd, text=True, capture_output=True, timeout=120
    )


def test_the_rules_pass_promtool_check(helm, tmp_path):
    path = rules_file(helm, tmp_path, "--set", "metrics.prometheusRule.alertLabels.team=platform")

    done = promtool("check", "rules", str(path), cwd=tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    alerts = [
        rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]
    ]
    assert {rule["alert"] for rule in alerts} >= {
        "HerdOperatorDown",
        "HerdReconcileErrors",
        "HerdCanaryRolledBack",
        "HerdCanaryAnalysisInconclusive",
        "HerdAutoscalerAtMaxReplicas",
        "HerdErrorRateAboveLimit",
    }
    for rule in alerts:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["labels"]["team"] == "platform", rule["alert"]
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
        assert f"{rule['alert']} in docs/operations.md" in rule["annotations"]["description"]


def test_the_alerts_fire_when_they_should_promtool_test_rules(helm, tmp_path):
    rules_file(helm, tmp_path)
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)

    done = promtool("test", "rules", RULES_TEST.name, cwd=tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr


def test_the_runbook_anchor_is_a_heading_of_operations_md():
    headings = re.findall(r"^#+ (.+)$", (REPO / "docs" / "operations.md").read_text(), re.M)
    assert "Alerts" in headings
    for alert in re.findall(
        r"- alert: (\w+)", (CHART / "templates/prometheusrule.yaml").read_text()
    ):
        assert f"`{alert}`" in (REPO / "docs" / "operations.md").read_text(), alert


# --- The dashboard's queries, answered by a real Prometheus. ---

#: What Grafana substitutes: the template variables, and its own interval for rate().
VARIABLES = {"namespace": "shop", "webservice": "web", "__rate_interval": "1m"}
STEP = 15  # seconds between synthetic samples, as a scrape interval
SPAN = 3600  # an hour of them


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def substitute(text: str) -> str:
    out = re.sub(r"\$\{?(\w+)\}?", lambda m: VARIABLES.get(m.group(1), m.group(0)), text)
    assert "$" not in out, f"an unknown variable in {text}"
    return out


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title and target, PromQL with the variables substituted) of every panel."""
    return [
        (f"{panel['title']} {target['refId']}", substitute(target["expr"]))
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def test_the_dashboard_is_well_formed():
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in panels(dashboard)]
    variables = {v["name"] for v in dashboard["templating"]["list"]}

    assert len(ids) == len(set(ids))
    assert {"datasource", "namespace", "webservice"} <= variables
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
        used = set(re.findall(r"\$\{?(\w+)", json.dumps(panel["targets"])))
        assert used <= variables | {"__rate_interval"}, panel["title"]


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _counter(name: str, series: list[tuple[dict[str, str], float]], times: list[int]) -> list[str]:
    """A counter family: each series rising by `per_second`."""
    lines = [f"# TYPE {name} counter"]
    for labels, per_second in series:
        for t in times:
            lines.append(f"{name}_total{_labels(labels)} {per_second * (t - times[0])} {t}")
    return lines


def _gauge(name: str, series: list[tuple[dict[str, str], float]], times: list[int]) -> list[str]:
    lines = [f"# TYPE {name} gauge"]
    for labels, value in series:
        lines.extend(f"{name}{_labels(labels)} {value} {t}" for t in times)
    return lines


def _histogram(
    name: str, labels: list[dict[str, str]], per_second: float, times: list[int]
) -> list[str]:
    """A histogram family: `per_second` observations spread over its buckets."""
    buckets = {"0.05": 0.5, "0.1": 0.8, "0.5": 0.95, "1.0": 0.99, "+Inf": 1.0}
    lines = [f"# TYPE {name} histogram"]
    for series in labels:
        for t in times:
            seen = per_second * (t - times[0])
            for le, share in buckets.items():
                lines.append(f"{name}_bucket{_labels({**series, 'le': le})} {seen * share} {t}")
            lines.append(f"{name}_count{_labels(series)} {seen} {t}")
            lines.append(f"{name}_sum{_labels(series)} {seen * 0.07} {t}")
    return lines


def synthetic(times: list[int]) -> str:
    """Every series the dashboard reads, for two WebServices (shop/web with a canary, and
    team-b/api), in OpenMetrics as promtool backfills it."""
    operator = {"job": "herd-metrics", "namespace": RELEASE_NAMESPACE}
    web = {"namespace": "shop", "webservice": "web", "job": "herd-metrics"}
    api = {"namespace": "team-b", "webservice": "api", "job": "herd-metrics"}
    pods = [
        {"namespace": ns, "app_kubernetes_io_instance": name, "herd_dev_track": track}
        for ns, name, track in (("shop", "web", "stable"), ("shop", "web", "canary"))
    ] + [{"namespace": "team-b", "app_kubernetes_io_instance": "api", "herd_dev_track": "stable"}]
    lines = [
        *_counter(
            "herd_reconciles",
            [
                ({**operator, "trigger": "update", "result": "ok"}, 2.0),
                ({**operator, "trigger": "child-deployment", "result": "retry"}, 0.1),
                ({**operator, "trigger": "canary", "result": "error"}, 0.05),
            ],
            times,
        ),
        *_histogram("herd_reconcile_duration_seconds", [operator], 2.0, times),
        *_counter("herd_reconcile_writes", [(operator, 0.5)], times),
        *_counter(
            "herd_kube_api_requests",
            [({**operator, "verb": v, "kind": "Deployment"}, 1.0) for v in ("get", "apply")],
            times,
        ),
        *_counter("herd_autoscale_decisions", [({**operator, "reason": "Load"}, 0.2)], times),
        *_counter(
            "http_requests",
            [({**pod, "code": "200", "method": "GET", "route": "/"}, 10.0) for pod in pods]
            + [({**pods[1], "code": "503", "method": "GET", "route": "/"}, 1.0)],
            times,
        ),
        *_histogram("http_request_duration_seconds", pods, 10.0, times),
        *_gauge(
            "herd_webservice_replicas",
            [({**who, "kind": kind}, 3) for who in (web, api) for kind in ("desired", "ready")],
            times,
        ),
        *_gauge("herd_webservice_max_replicas", [(web, 10)], times),
        *_gauge("herd_webservice_canary_weight", [(web, 20), (api, 0)], times),
        *_gauge("herd_webservice_max_error_rate", [({**web, "limit": "analysis"}, 0.01)], times),
        *_counter(
            "herd_canary_analyses",
            [({**web, "verdict": v}, 1 / 30) for v in ("pass", "fail", "inconclusive")],
            times,
        ),
        *_counter("herd_canary_rollbacks", [(web, 1 / 600)], times),
        "# EOF",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory) -> Iterator[tuple[prom.Prometheus, int]]:
    """A Prometheus over an hour of synthetic series that ended a minute ago, and that end."""
    workdir = tmp_path_factory.mktemp("prometheus")
    end = int(time.time()) - 60
    times = list(range(end - SPAN, end + 1, STEP))
    source = workdir / "series.om"
    source.write_text(synthetic(times))
    done = promtool(
        "tsdb", "create-blocks-from", "openmetrics", str(source), str(workdir / "data"),
        cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    binary("prometheus")  # fails with the reason when missing, before the harness says less
    # Retention counts back from the newest block: keep the whole hour.
    with prom.running(workdir, free_port(), [], retention="30d") as prometheus:
        yield prometheus, end


def test_every_dashboard_query_answers_over_the_synthetic_series(backfilled):
    prometheus, end = backfilled
    dashboard = json.loads(DASHBOARD.read_text())
    empty, unanswered = [], []

    for where, promql in queries(dashboard):
        result = prometheus.query(promql, at=end)
        if not result:
            empty.append(f"{where}: {promql}")
        elif not any(_number(sample["value"][1]) for sample in result):
            unanswered.append(f"{where}: {promql} -> {result}")

    assert len(queries(dashboard)) >= 15
    assert not empty, "no series:\n" + "\n".join(empty)
    assert not unanswered, "no number (NaN or Inf only):\n" + "\n".join(unanswered)


def test_the_variables_list_the_webservices(backfilled):
    prometheus, end = backfilled
    variables = {v["name"]: v for v in json.loads(DASHBOARD.read_text())["templating"]["list"]}
    found = {}
    for name in ("namespace", "webservice"):
        query = variables[name]["query"]["query"]
        selector, label = re.fullmatch(r"label_values\((.+), (\w+)\)", query).groups()
        result = prometheus.query(f"count by ({label}) ({substitute(selector)})", at=end)
        found[name] = {sample["metric"][label] for sample in result}

    assert found == {"namespace": {"shop", "team-b"}, "webservice": {"web"}}


def test_a_query_prometheus_cannot_parse_fails(backfilled):
    """The check above would see a broken panel: a parse error is an error, not "no data"."""
    prometheus, end = backfilled
    with pytest.raises(AssertionError, match="parse error"):
        prometheus.query("sum by (le (rate(herd_reconciles_total[1m]))", at=end)


def _number(text: str) -> bool:
    return text not in ("NaN", "+Inf", "-Inf")
