"""Which Prometheus a WebService may have the operator call: the admin's choice, not the
namespace user's."""

import pytest

from herd.endpoints import NotAllowed, check, redacted
from herd.model import InvalidSpec, parse
from herd.settings import Settings

SETTINGS = Settings(
    prometheus_url="http://prometheus-server.monitoring.svc:80",
    prometheus_allowed=("http://127.0.0.1", "https://metrics.example.com:9443"),
)


@pytest.mark.parametrize(
    "url",
    [
        "http://prometheus-server.monitoring.svc:80",
        "http://prometheus-server.monitoring.svc",  # the same origin, port implied
        "http://prometheus-server.monitoring.svc/prefix",
        "http://127.0.0.1:9090",  # an allowed host, any port
        "http://127.0.0.1:31337/",
        "https://metrics.example.com:9443/api",
    ],
)
def test_allowed(url):
    check(url, SETTINGS)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data", "not a Prometheus the operator may call"),
        ("http://prometheus-server.monitoring.svc:8080", "not a Prometheus"),  # another port
        ("https://prometheus-server.monitoring.svc:80", "not a Prometheus"),  # another scheme
        ("https://metrics.example.com", "not a Prometheus"),  # 443, not 9443
        ("http://127.0.0.1.evil.example:9090", "not a Prometheus"),
        ("http://127.0.0.1:9@evil.example", "must not carry credentials"),
        ("http://user:secret@127.0.0.1:9090", "must not carry credentials"),
        ("file:///etc/passwd", r"not an http\(s\) URL"),
    ],
)
def test_refused(url, why):
    with pytest.raises(NotAllowed, match=why) as refused:
        check(url, SETTINGS)
    assert "secret" not in str(refused.value)


def test_a_refused_url_makes_the_spec_degraded_with_its_own_reason():
    body = {
        "metadata": {"name": "web"},
        "spec": {"image": "i", "app": "a:b", "metrics": {"prometheusURL": "http://10.0.0.1"}},
    }
    with pytest.raises(InvalidSpec) as refused:
        parse(body, SETTINGS)
    assert refused.value.reason == "PrometheusNotAllowed"


def test_credentials_are_never_printed():
    assert redacted("http://user:secret@prom:9090/x") == "http://prom:9090/x"
    assert redacted("http://prom:9090") == "http://prom:9090"
