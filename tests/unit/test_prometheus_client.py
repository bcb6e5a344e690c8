"""herd.prometheus against a stand-in HTTP server on loopback: answers, retries, failures."""

import json
import socket

import pytest

from herd.prometheus import Prometheus, read_credentials
from tests.support.http_stub import serving

VECTOR = {"status": "success", "data": {"resultType": "vector", "result": [{"value": [0, "42"]}]}}


def test_a_value_and_the_query_sent():
    with serving([(200, json.dumps(VECTOR).encode())]) as (url, seen):
        observation = Prometheus().query(url + "/", 'sum(rate(x{a="b"}[1m]))')
    assert (observation.kind, observation.value) == ("value", 42.0)
    assert seen[0].startswith("/api/v1/query?query=sum%28rate%28x%7Ba%3D%22b%22")


def test_a_5xx_is_retried_then_answered():
    answers = [(503, b"busy"), (200, json.dumps(VECTOR).encode())]
    with serving(answers) as (url, seen):
        observation = Prometheus(backoff=0.01).query(url, "up")
    assert observation.value == 42.0 and len(seen) == 2


@pytest.mark.parametrize(
    ("answer", "kind"),
    [((500, b"down"), "unreachable"), ((200, b"<html>"), "invalid")],
)
def test_failures_are_observations_never_values(answer, kind):
    with serving([answer]) as (url, seen):
        observation = Prometheus(retries=1, backoff=0.01).query(url, "up")
    assert observation.kind == kind and observation.value is None


def test_nothing_listening_is_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    observation = Prometheus(timeout=1, retries=0).query(f"http://127.0.0.1:{port}", "up")
    assert observation.kind == "unreachable" and str(port) in observation.detail


def test_a_redirect_is_not_followed():
    """The URL is a namespace user's: a redirect could lead the operator anywhere."""
    with serving([(302, b"")]) as (url, seen):
        observation = Prometheus().query(url, "up")
    assert observation.kind == "invalid" and "HTTP 302" in observation.detail
    assert len(seen) == 1


@pytest.mark.parametrize(
    "body",
    [b"[1, 2]", b'"text"', b'{"status": "success", "data": []}', b'{"status": "success"}'],
)
def test_any_shape_of_json_is_an_observation_never_an_exception(body):
    with serving([(200, body)]) as (url, _):
        assert Prometheus().query(url, "up").kind == "invalid"


def test_what_an_endpoint_answers_reaches_no_message():
    with serving([(503, b"secret-token-in-the-body")]) as (url, _):
        observation = Prometheus(retries=0).query(url, "up")
    assert "secret" not in observation.detail and "HTTP 503" in observation.detail
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = Prometheus(timeout=1, retries=0).query(f"http://user:hunter2@127.0.0.1:{port}", "up")
    assert closed.kind == "unreachable" and "hunter2" not in closed.detail


def test_credentials_go_to_their_own_origin_only(tmp_path, monkeypatch):
    """The admin's Prometheus token reaches the default Prometheus, never one a WebService
    names (even an allowed one)."""
    (tmp_path / "token").write_text("s3cret\n")
    header = read_credentials(str(tmp_path))
    assert header == "Bearer s3cret"
    body = json.dumps(VECTOR).encode()
    with serving([(200, body)]) as (default, _), serving([(200, body)], "127.0.0.2") as (other, _):
        client = Prometheus(credentials=(default, header))
        sent: dict[str, str | None] = {}
        request = client._http.request

        def recording(method, url, **kwargs):
            sent[url.split("/api")[0]] = kwargs["headers"].get("Authorization")
            return request(method, url, **kwargs)

        monkeypatch.setattr(client._http, "request", recording)
        assert client.query(default + "/", "up").ok and client.query(other, "up").ok
    assert sent == {default: "Bearer s3cret", other: None}


def test_basic_credentials(tmp_path):
    (tmp_path / "username").write_text("herd")
    (tmp_path / "password").write_text("pw")
    assert read_credentials(str(tmp_path)) == "Basic aGVyZDpwdw=="
    assert read_credentials("") is None
