"""The dashboard's defences, as raw HTTP requests a hostile page or a rebound DNS name would
send: no browser needed to forge them."""

from __future__ import annotations

import html
import http.client
import json
import re
import time
from urllib.parse import urlencode

import pytest

from herd.timestamps import rfc3339
from tests.dashboard.conftest import serving
from tests.support.http_stub import serving as stub
from tests.support.webservices import paused, webservice


def request(
    dashboard, method: str, path: str, headers: dict[str, str] | None = None, body: str = ""
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(dashboard.host, timeout=10)
    connection.request(
        method, path, body=body or None, headers={"Host": dashboard.host, **(headers or {})}
    )
    response = connection.getresponse()
    response.body = html.unescape(response.read().decode())
    connection.close()
    return response


def token_and_cookie(dashboard) -> tuple[str, str]:
    page = request(dashboard, "GET", "/webservices/shop/web")
    token = re.search(r'name="csrf" value="([^"]+)"', page.body).group(1)
    cookie = page.getheader("set-cookie")
    return token, cookie


@pytest.fixture
def web(fake):
    fake.put(webservice("web", canary=paused()))


@pytest.mark.parametrize(
    "host", ["evil.example.com:80", "attacker.test", "127.0.0.2:8080", "", "localhost:1"]
)
def test_a_host_that_is_not_the_dashboards_is_refused(dashboard, web, host):
    """DNS rebinding: another name resolving to 127.0.0.1 makes the browser treat the dashboard
    as that name's origin; the Host header still names it."""
    answer = request(dashboard, "GET", "/", {"Host": host})
    assert answer.status == 403
    assert "is not this dashboard's address" in answer.body
    assert "web" not in answer.body


def test_localhost_is_the_same_dashboard(dashboard, web):
    port = dashboard.host.rsplit(":", 1)[1]
    assert request(dashboard, "GET", "/", {"Host": f"localhost:{port}"}).status == 200


def test_pages_set_a_strict_cookie_and_forbid_framing(dashboard, web):
    answer = request(dashboard, "GET", "/webservices/shop/web")
    cookie = answer.getheader("set-cookie")
    assert "SameSite=strict" in cookie and "HttpOnly" in cookie, cookie
    assert "frame-ancestors 'none'" in answer.getheader("content-security-policy")
    assert answer.getheader("x-frame-options") == "DENY"


def _promote(dashboard, headers: dict[str, str], token: str | None):
    form = {"action": "promote", **({"csrf": token} if token is not None else {})}
    headers = {"Content-Type": "application/x-www-form-urlencoded", **headers}
    return request(dashboard, "POST", "/webservices/shop/web/intent", headers, urlencode(form))


@pytest.mark.parametrize(
    ("origin", "with_token", "with_cookie", "says"),
    [
        (None, True, True, "no Origin header"),
        ("http://evil.example.com", True, True, "from another origin"),
        ("null", True, True, "from another origin"),
        ("https://{host}", True, True, "from another origin"),
        ("http://{host}", False, True, "lacks the dashboard's token"),
        ("http://{host}", True, False, "lacks the dashboard's token"),
        ("http://{host}", "forged", True, "not this dashboard's"),
    ],
    ids=["no-origin", "other-site", "opaque", "other-scheme", "no-token", "no-cookie", "forged"],
)
def test_an_action_from_elsewhere_is_refused(
    dashboard, fake, web, origin, with_token, with_cookie, says
):
    token, cookie = token_and_cookie(dashboard)
    headers = {}
    if origin is not None:
        headers["Origin"] = origin.format(host=dashboard.host)
    if with_cookie:
        headers["Cookie"] = cookie.split(";")[0]
    sent = "forged" if with_token == "forged" else token if with_token else None
    answer = _promote(dashboard, headers, sent)
    assert answer.status == 403, answer.body
    assert says in answer.body
    assert "intent" not in fake.get_webservice("shop", "web")["status"]


def test_an_action_from_the_dashboard_itself_is_written(dashboard, fake, web):
    token, cookie = token_and_cookie(dashboard)
    headers = {"Origin": f"http://{dashboard.host}", "Cookie": cookie.split(";")[0]}
    answer = _promote(dashboard, headers, token)
    assert answer.status == 303
    assert answer.getheader("location") == "/webservices/shop/web?requested=promote"
    assert fake.get_webservice("shop", "web")["status"]["intent"]["action"] == "promote"


def test_an_action_that_makes_no_sense_now_is_refused_as_the_cli_refuses_it(dashboard, fake):
    fake.put(webservice("web", canary=paused(phase="Succeeded")))
    token, cookie = token_and_cookie(dashboard)
    headers = {"Origin": f"http://{dashboard.host}", "Cookie": cookie.split(";")[0]}
    answer = _promote(dashboard, headers, token)
    assert answer.status == 409
    assert "shop/web: cannot promote: no canary rollout in progress: the last one is Succeeded" in (
        answer.body
    )
    assert "intent" not in fake.get_webservice("shop", "web")["status"]


def test_other_namespaces_are_not_served(dashboard, fake):
    fake.put(webservice("web", namespace="other"))
    answer = request(dashboard, "GET", "/webservices/other/web")
    assert answer.status == 404
    assert "shows namespace shop only" in answer.body


def test_the_event_stream_sends_each_change(dashboard, fake, web):
    connection = http.client.HTTPConnection(dashboard.host, timeout=10)
    connection.request("GET", "/events", headers={"Host": dashboard.host})
    stream = connection.getresponse()
    assert stream.getheader("content-type").startswith("text/event-stream")
    assert stream.readline() == b"retry: 2000\n"
    fake.apply_status("shop", "web", {"canary": {"weight": 40}}, manager="herd-canary")
    lines = []
    while not lines or lines[-1] != b"\n" or not any(b"40%" in line for line in lines):
        lines.append(stream.readline())
    assert b"event: webservice\n" in lines
    connection.close()


def test_a_crafted_notice_is_not_shown(dashboard, web):
    answer = request(dashboard, "GET", "/webservices/shop/web?requested=pay%20attacker")
    assert answer.status == 200
    assert "pay attacker" not in answer.body


def rolling_since(seconds_ago: float) -> dict:
    return webservice("web", canary=paused(startTime=rfc3339(time.time() - seconds_ago)))


def test_the_webservice_page_charts_both_tracks_from_prometheus(dashboard, fake):
    fake.put(rolling_since(1200))
    answer = request(dashboard, "GET", "/webservices/shop/web")
    assert answer.status == 200
    section = answer.body[answer.body.index('id="prometheus-charts"') :]
    assert section.count('class="track-canary"') == 2 and section.count('class="track-stable"')
    assert "<h3>Error rate</h3>" in section and "<h3>p99 latency</h3>" in section
    assert 'class="threshold"' in section  # spec.canary.analysis.maxErrorRate
    assert "through the Kubernetes API server's service proxy" in section
    asked = [url for url, _ in fake.proxied]
    assert asked == ["http://prometheus-server.monitoring.svc:80/api/v1/query_range"] * 4
    assert 'herd_dev_track="canary"' in fake.proxied[0][1]["query"]


@pytest.mark.parametrize(
    ("proxy", "note", "asked"),
    [
        (
            lambda url, fields: (403, b'{"message": "secret: forbidden"}'),
            "HTTP 403 (reading it through the API server needs get on services/proxy for "
            "service prometheus-server in namespace monitoring).",
            4,
        ),
        (lambda url, fields: (503, b"secret"), "HTTP 503", 1),  # unreachable: asked once
        (
            lambda url, fields: (
                200,
                b'{"status": "success", "data": {"resultType": "matrix", "result": []}}',
            ),
            "Prometheus has no data for either track over this rollout.",
            4,
        ),
    ],
    ids=["forbidden", "no-endpoints", "no-data"],
)
def test_without_prometheus_data_the_page_says_why_in_the_charts_place(
    dashboard, fake, proxy, note, asked
):
    fake.put(rolling_since(600))
    fake.proxy = proxy
    answer = request(dashboard, "GET", "/webservices/shop/web")
    assert answer.status == 200
    shown = re.search(r'<p class="muted" id="prometheus-note">([^<]*)</p>', answer.body)
    assert shown is not None and note in shown.group(1)
    assert "secret" not in answer.body and "track-canary" not in answer.body
    assert len(fake.proxied) == asked


def test_a_webservice_without_a_canary_has_no_prometheus_charts(dashboard, fake):
    fake.put(webservice("web"))
    answer = request(dashboard, "GET", "/webservices/shop/web")
    assert answer.status == 200 and 'id="prometheus-charts"' not in answer.body
    assert fake.proxied == []


def test_the_prometheus_flag_is_read_directly(fake):
    sample = [[int(time.time() - 300), "0.5"]]
    matrix = {"status": "success", "data": {"resultType": "matrix", "result": [{"values": sample}]}}
    fake.put(rolling_since(600))
    with (
        stub([(200, json.dumps(matrix).encode())]) as (prometheus, seen),
        serving(fake, "shop", prometheus=prometheus) as running,
    ):
        answer = request(running, "GET", "/webservices/shop/web")
    assert answer.status == 200 and f"Prometheus at {prometheus}, directly" in answer.body
    assert 'class="track-canary"' in answer.body
    assert len(seen) == 4 and all(p.startswith("/api/v1/query_range?") for p in seen)
    assert fake.proxied == []
