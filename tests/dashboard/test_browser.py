"""The dashboard in a real browser (Debian's chromium, headless, driven by Playwright) over an
in-memory API: what each page shows, live updates without a reload, the actions and their
refusals. A screenshot of each page is saved under the test's tmp_path and must not be blank."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from herd import kinds
from herd.api_errors import ApiError
from herd.kinds import Ref
from herd.timestamps import rfc3339
from tests.dashboard.conftest import REQUESTER, serving
from tests.support.webservices import event, paused, webservice

WEB = Ref(kinds.WEBSERVICE.kind, "shop", "web")


def test_the_list_shows_the_namespaces_webservices_and_follows_the_watch(
    dashboard, fake, page, screenshot
):
    fake.put(webservice("web", canary=paused(phase="Progressing", stepIndex=0, weight=10)))
    fake.put(webservice("api"))
    fake.put(webservice("elsewhere", namespace="other"))
    page.goto(dashboard.url + "/")
    rows = page.locator("#webservices tbody tr")
    expect(rows).to_have_count(2)
    web = page.locator('tr[data-key="shop/web"]')
    cells = [web.locator(f'td[data-field="{field}"]') for field in ("name", "ready", "replicas")]
    for cell, text in zip(cells, ("web", "True", "3/3"), strict=True):
        expect(cell).to_have_text(text)
    expect(web.locator('td[data-field="workers"]')).to_have_text("uvicorn × 4")
    expect(web.locator('td[data-field="phase"]')).to_have_text("Progressing")
    expect(web.locator('td[data-field="step"]')).to_have_text("1/4")
    expect(web.locator('td[data-field="weight"]')).to_have_text("10%")
    expect(web.locator('td[data-field="verdict"]')).to_have_text("pass")
    expect(page.locator('tr[data-key="shop/api"] td[data-field="phase"]')).to_have_text("-")
    expect(page.locator("th")).not_to_contain_text(["Namespace"])
    screenshot(page, "list", doc="dashboard-list", until="#webservices")

    page.evaluate("window.notReloaded = true")
    fake.apply_status(
        "shop", "web", {"canary": {"stepIndex": 3, "weight": 50}}, manager="herd-canary"
    )
    expect(web.locator('td[data-field="weight"]')).to_have_text("50%")
    expect(web.locator('td[data-field="step"]')).to_have_text("4/4")
    fake.put(webservice("cart"))
    expect(rows).to_have_count(3)
    expect(rows.first).to_have_attribute("data-key", "shop/api")
    expect(rows.nth(1)).to_have_attribute("data-key", "shop/cart")  # in order, as on a reload
    fake.remove(Ref(kinds.WEBSERVICE.kind, "shop", "api"))
    expect(rows).to_have_count(2)
    fake.put(webservice("hidden", namespace="other"))
    page.wait_for_timeout(300)
    expect(rows).to_have_count(2)
    assert page.evaluate("window.notReloaded") is True


def test_all_namespaces_has_a_namespace_column(fake, page, screenshot):
    fake.put(webservice("web"))
    fake.put(webservice("web", namespace="other"))
    with serving(fake, None) as everywhere:
        page.goto(everywhere.url + "/")
        expect(page.locator("#webservices tbody tr")).to_have_count(2)
        expect(page.locator('tr[data-key="other/web"] td[data-field="namespace"]')).to_have_text(
            "other"
        )
        screenshot(page, "list-all-namespaces")


def test_the_webservice_page_shows_steps_analyses_autoscaler_conditions_and_events(
    dashboard, fake, page, screenshot
):
    autoscaling = {
        "desiredReplicas": 5,
        "reason": "Load",
        "message": "1200 rpm over 3 replicas at 300 rpm each",
        "currentRPM": 1200.0,
        "recommendations": [{"time": 1_764_000_000, "replicas": 4}],
    }
    started = rfc3339(time.time() - 1200)
    fake.put(webservice("web", canary=paused(startTime=started), autoscaling=autoscaling))
    fake.events.append(
        event("web", "RolloutStarted", "canary 9f8e7d6c5b started", "2026-11-21T09:00:00Z")
    )
    fake.events.append(
        event("web", "AnalysisFailed", "error rate 3% over 1%", "2026-11-21T09:05:00Z", "Warning")
    )
    page.goto(dashboard.url + "/webservices/shop/web")
    expect(page.locator('dd[data-field="phase"]')).to_have_text("Paused (waiting for herd promote)")
    steps = page.locator("ol.timeline li")
    expect(steps).to_have_count(4)
    expect(steps.nth(0)).to_have_class("done")
    expect(steps.nth(2)).to_have_class("current")
    expect(steps.nth(2)).to_contain_text("pause until promote")
    expect(steps.nth(3)).to_have_class("pending")
    expect(page.locator("#analyses tbody tr")).to_have_count(1)
    expect(page.locator("#analyses tbody tr").first).to_contain_text("0.40% (max 1.00%)")
    expect(page.locator("svg.chart polyline.weight")).to_have_count(1)
    charts = page.locator("#prometheus-charts svg.chart")
    expect(charts).to_have_count(2)  # error rate, p99 latency: each with both tracks
    for i in range(2):
        expect(charts.nth(i).locator("polyline.track-canary")).to_have_count(1)
        expect(charts.nth(i).locator("polyline.track-stable")).to_have_count(1)
    expect(page.get_by_text("1200 rpm over 3 replicas")).to_be_visible()
    expect(page.locator("#events tbody tr").first).to_contain_text("AnalysisFailed")
    expect(page.get_by_role("button", name="Promote", exact=True)).to_be_enabled()
    expect(page.get_by_role("button", name="Resume")).to_be_enabled()
    expect(page.get_by_role("button", name="Pause")).to_be_disabled()
    expect(page.get_by_text("the rollout is already paused")).to_be_visible()
    expect(page.get_by_role("button", name="Retry")).to_be_disabled()
    screenshot(page, "webservice", doc="dashboard-webservice", until="#prometheus-charts")


def test_promote_writes_the_intent_and_the_page_follows_the_rollout(
    dashboard, fake, page, screenshot
):
    fake.put(webservice("web", canary=paused()))
    page.goto(dashboard.url + "/webservices/shop/web")
    page.get_by_role("button", name="Promote", exact=True).click()
    expect(page.get_by_role("status")).to_have_text(
        "promote requested: the operator acts on it shortly"
    )
    intent = fake.get_webservice("shop", "web")["status"]["intent"]
    assert (intent["action"], intent["by"]) == ("promote", REQUESTER)
    assert ("herd-cli", {"intent": intent}) in fake.status_writes  # the CLI's field manager
    expect(page.locator('dd[data-field="last-request"]')).to_contain_text("promote by")

    # The canary controller acts on it: the page follows without a reload.
    page.evaluate("window.notReloaded = true")
    moved = {"phase": "Progressing", "stepIndex": 3, "weight": 50, "pausedReason": ""}
    fake.apply_status(
        "shop", "web", {"canary": {**moved, "handledIntent": intent["id"]}}, manager="herd-canary"
    )
    expect(page.locator('dd[data-field="weight"]')).to_have_text("50%")
    expect(page.locator("ol.timeline li").nth(3)).to_have_class("current")
    expect(page.locator('dd[data-field="last-request"]')).to_contain_text(": done")
    points = page.locator("svg.chart polyline.weight").get_attribute("points")
    assert len(points.split()) == 4, points  # two weights, each held until the next
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "webservice-promoted")


def test_promote_full_and_abort_write_their_actions(dashboard, fake, page):
    fake.put(webservice("web", canary=paused()))
    page.goto(dashboard.url + "/webservices/shop/web")
    page.get_by_role("button", name="Promote fully").click()
    expect(page.get_by_role("status")).to_contain_text("promote-full requested")
    assert fake.get_webservice("shop", "web")["status"]["intent"]["action"] == "promote-full"
    page.get_by_role("button", name="Abort").click()
    expect(page.get_by_role("status")).to_contain_text("abort requested")


def test_without_the_right_to_patch_the_status_every_button_is_disabled_with_the_reason(
    dashboard, fake, page, screenshot
):
    fake.put(webservice("web", canary=paused()))
    fake.access[("patch", "webservices/status")] = (False, "no RBAC policy matched")
    page.goto(dashboard.url + "/webservices/shop/web")
    buttons = page.locator(".actions button")
    expect(buttons).to_have_count(6)
    for i in range(6):
        expect(buttons.nth(i)).to_be_disabled()
    expect(page.locator("#permission")).to_have_text(
        "your identity may not patch webservices/status in shop (needs patch on "
        "webservices.herd.dev/status: the herd-promoter ClusterRole): no RBAC policy matched"
    )
    screenshot(page, "webservice-no-rights")


def test_the_api_servers_403_is_shown(dashboard, fake, page, screenshot):
    """The access review allowed it, the API server refused it (a RoleBinding removed in
    between, or an admission webhook): its own words are on the page."""
    fake.put(webservice("web", canary=paused()))
    refused = 'webservices.herd.dev "web" is forbidden: User "dev" cannot patch resource'
    fake.fail("write_intent", kinds.WEBSERVICE.kind, ApiError(403, "Forbidden", refused))
    page.goto(dashboard.url + "/webservices/shop/web")
    with page.expect_response(re.compile(r"/intent$")) as answer:
        page.get_by_role("button", name="Promote", exact=True).click()
    assert answer.value.status == 403
    expect(page.locator("#action-problem")).to_contain_text(f"forbidden: {refused}")
    expect(page.locator("#action-problem")).to_contain_text("herd-promoter ClusterRole")
    assert "intent" not in fake.get_webservice("shop", "web")["status"]
    screenshot(page, "webservice-forbidden")
    # The answer's address is the form's target; live updates still reload the WebService.
    fake.apply_status("shop", "web", {"canary": {"weight": 30}}, manager="herd-canary")
    expect(page.locator('dd[data-field="weight"]')).to_have_text("30%")


def test_an_unreachable_cluster_gets_an_error_page(fake, page, screenshot):
    fake.unreachable()
    with serving(fake, "shop") as dashboard:
        answer = page.goto(dashboard.url + "/")
        assert answer is not None and answer.status == 502
        expect(page.locator("h1")).to_have_text("Cluster unreachable")
        expect(page.locator("#error-message")).to_have_text(
            f"cannot reach the Kubernetes API at {fake.server}: Connection refused"
        )
        expect(page.locator("#problem")).to_contain_text("live updates stopped: cannot reach")
        screenshot(page, "unreachable")
        answer = page.goto(dashboard.url + "/webservices/shop/web")
        assert answer is not None and answer.status == 502
