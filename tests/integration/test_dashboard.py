"""`herd dashboard` on the local cluster, in Debian's chromium: the installed command with a
user's kubeconfig, the real API server's watch, RBAC and access reviews, the operator acting on
the dashboard's intents (issue 16, item 2).

The canary runs as in test_canary.py: the operator on kwok's nodes, a real Prometheus scraping
herd-runtime servers that stand in for the stable and canary pods, load from hey on the canary.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from playwright.sync_api import expect

from bench.harness.appservers import free_port
from bench.harness.cluster import KUBECONFIG, REPO, Kubectl, eventually
from bench.harness.load import hey
from tests.integration.test_canary import APP, deploy_stable, manifest, rig
from tests.integration.test_cli import _chart_role, _user, create
from tests.support.canary_status import PAUSED
from tests.support.cli import HERD
from tests.support.rollout import canary

PROXIED_QUERY = (
    "/api/v1/namespaces/monitoring/services/prometheus-server:80/proxy/api/v1/query?query=up"
)
STEPS = "[{setWeight: 20}, {pause: {}}, {setWeight: 50}, {pause: {}}]"
#: The operator's ticks, analyses and kwok's pods take seconds; a browser assertion waits this.
SLOW = 90_000


@contextmanager
def dashboard(namespace: str, kubeconfig: Path = KUBECONFIG) -> Iterator[str]:
    """`herd dashboard -n NAMESPACE` as a user starts it; its URL once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [str(HERD), "dashboard", "-n", namespace, "--port", str(port)],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    def answers() -> bool:
        assert process.poll() is None, f"herd dashboard exited: {process.stdout.read()}"
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/static/dashboard.css")
            return connection.getresponse().status == 200
        except OSError:
            return False

    try:
        eventually(answers, timeout=30, what="herd dashboard answering")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_the_dashboard_follows_a_canary_and_promotes_it(
    herd_operator, kubectl: Kubectl, tmp_path, page, screenshot
):
    with rig(kubectl, tmp_path) as r, dashboard(kubectl.namespace) as url:
        deploy_stable(r, STEPS)
        kubectl.apply(
            "apiVersion: herd.dev/v1alpha1\nkind: WebService\nmetadata: {name: api}\n"
            f"spec: {{image: api:1, app: '{APP}', replicas: 1}}\n"
        )
        page.goto(url + "/")
        rows = page.locator("#webservices tbody tr")
        expect(rows).to_have_count(2)
        web = page.locator(f'tr[data-key="{kubectl.namespace}/web"]')
        expect(web.locator('td[data-field="ready"]')).to_have_text("True")
        assert web.locator('td[data-field="weight"]').inner_text() != "20%"  # no rollout yet
        expect(page.locator(f'tr[data-key="{kubectl.namespace}/api"]')).to_have_count(1)

        page.evaluate("window.notReloaded = true")
        generator = hey(r.canary_port, "/", seconds=120, rate_per_worker=10, workers=2)
        try:
            kubectl.apply(manifest(r, "web:2", STEPS))
            # The operator's weight reaches the open page through the watch, without a reload.
            expect(web.locator('td[data-field="weight"]')).to_have_text("20%", timeout=SLOW)
            expect(web.locator('td[data-field="phase"]')).to_have_text("Paused", timeout=SLOW)
            expect(web.locator('td[data-field="step"]')).to_have_text("2/4")
            assert page.evaluate("window.notReloaded") is True
            screenshot(page, "list-canary")

            web.locator("a").click()
            expect(page.locator("ol.timeline li").nth(1)).to_have_class("current")
            # The rig's Prometheus (a loopback URL: read directly) has the canary's requests.
            charts = page.locator("#prometheus-charts")
            # Attached, not visible: a canary without errors is a flat line on the bottom edge,
            # a box of no height, which Playwright calls hidden.
            expect(charts.locator("polyline.track-canary").first).to_be_attached(timeout=SLOW)
            expect(charts).to_contain_text(f"Prometheus at {r.prometheus.url}, directly")
            page.get_by_role("button", name="Promote", exact=True).click()
            expect(page.get_by_role("status")).to_contain_text("promote requested")
            expect(page.locator('dd[data-field="weight"]')).to_have_text("50%", timeout=SLOW)
            expect(page.locator('dd[data-field="last-request"]')).to_contain_text(": done")
            current = canary(kubectl)
            assert current["stepIndex"] >= 2 and current["weight"] == 50, current
            assert kubectl.get("webservice", "web")["status"]["intent"]["action"] == "promote"
            screenshot(page, "webservice-promoted")
        finally:
            generator.kill()


def test_a_viewer_sees_the_actions_disabled_and_the_api_server_refuses_a_forced_one(
    ns, kube, kubectl_binary, tmp_path, page, screenshot
):
    """A herd-view identity: its access review says no, so every button is disabled with the
    reason; a button enabled by hand anyway gets the API server's 403 on the page."""
    create(ns, kube, PAUSED)
    viewer = _user(ns, tmp_path, "viewer", _chart_role("herd-view", kubectl_binary.parent / "helm"))

    def may_read() -> bool:
        done = subprocess.run(
            [str(HERD), "status", "web"],
            env={**os.environ, "KUBECONFIG": str(viewer)},
            capture_output=True,
            timeout=60,
        )
        return done.returncode == 0

    eventually(may_read, timeout=30, what="the RoleBinding in force")
    with dashboard(ns.namespace, viewer) as url:
        page.goto(f"{url}/webservices/{ns.namespace}/web")
        buttons = page.locator(".actions button")
        expect(buttons).to_have_count(6)
        for i in range(6):
            expect(buttons.nth(i)).to_be_disabled()
        expect(page.locator("#permission")).to_contain_text(
            f"your identity may not patch webservices/status in {ns.namespace}"
        )
        # The chart's default Prometheus is in-cluster: herd-view grants no services/proxy.
        expect(page.locator("#prometheus-note")).to_contain_text(
            "HTTP 403 (reading it through the API server needs get on services/proxy for "
            "service prometheus-server in namespace monitoring)"
        )
        screenshot(page, "webservice-viewer")

        promote = page.get_by_role("button", name="Promote", exact=True)
        promote.evaluate("button => button.disabled = false")
        with page.expect_response(lambda r: r.url.endswith("/intent")) as answer:
            promote.click()
        assert answer.value.status == 403
        expect(page.locator("#action-problem")).to_contain_text(
            'cannot patch resource "webservices/status"'
        )
        assert "intent" not in ns.get("webservice", "web")["status"]


def test_the_in_cluster_prometheus_is_read_through_the_api_servers_service_proxy(ns, kube, page):
    """The chart's default URL, monitoring/prometheus-server, does not resolve here: the
    admin's dashboard asks the API server's service proxy, and the local Prometheus answers
    (no series for this WebService: the note says so, not an error)."""
    create(ns, kube, PAUSED)
    with dashboard(ns.namespace) as url:
        page.goto(f"{url}/webservices/{ns.namespace}/web")
        expect(page.locator("#prometheus-charts")).to_contain_text(
            "Prometheus at http://prometheus-server.monitoring.svc:80, through the Kubernetes "
            "API server's service proxy"
        )
        expect(page.locator("#prometheus-note")).to_have_text(
            "Prometheus has no data for either track over this rollout."
        )


def _docs_prometheus_proxy_role() -> list[dict]:
    """The Role and RoleBinding docs/dashboard.md gives cluster admins, as written there."""
    text = (REPO / "docs" / "dashboard.md").read_text()
    after = text.split("A Role and RoleBinding for the chart's default Prometheus:", 1)[1]
    block = after.split("```yaml", 1)[1].split("```", 1)[0]
    return [d for d in yaml.safe_load_all(block) if d]


def test_the_docs_role_lets_a_viewer_read_the_in_cluster_prometheus(
    ns, kube, kubectl_binary, tmp_path, page
):
    """docs/dashboard.md's Role for services/proxy, bound to a herd-view identity: the API
    server admits the proxy request by the name as the URL spells it, so the charts' place
    says there is no data instead of HTTP 403."""
    create(ns, kube, PAUSED)
    viewer = _user(ns, tmp_path, "viewer", _chart_role("herd-view", kubectl_binary.parent / "helm"))
    role, binding = _docs_prometheus_proxy_role()
    suffix = ns.namespace  # the monitoring namespace is shared by concurrent tests
    role["metadata"]["name"] = f"{role['metadata']['name']}-{suffix}"
    binding["metadata"]["name"] = f"{binding['metadata']['name']}-{suffix}"
    binding["roleRef"]["name"] = role["metadata"]["name"]
    binding["subjects"] = [{"kind": "ServiceAccount", "name": "viewer", "namespace": ns.namespace}]
    monitoring = Kubectl(kubectl_binary, "monitoring")
    try:
        for document in (role, binding):
            monitoring.apply(json.dumps(document))

        def may_proxy() -> bool:
            return (
                subprocess.run(
                    [str(kubectl_binary), "get", "--raw", PROXIED_QUERY],
                    env={**os.environ, "KUBECONFIG": str(viewer)},
                    capture_output=True,
                    timeout=60,
                ).returncode
                == 0
            )

        eventually(may_proxy, timeout=30, what="the docs' RoleBinding in force")
        with dashboard(ns.namespace, viewer) as url:
            page.goto(f"{url}/webservices/{ns.namespace}/web")
            expect(page.locator("#prometheus-note")).to_have_text(
                "Prometheus has no data for either track over this rollout.", timeout=SLOW
            )
    finally:
        monitoring.run("delete", "rolebinding", binding["metadata"]["name"], "--ignore-not-found")
        monitoring.run("delete", "role", role["metadata"]["name"], "--ignore-not-found")
