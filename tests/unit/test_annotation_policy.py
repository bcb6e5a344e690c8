"""Which Ingress annotations a namespace user may set: the risky ones only with the admin's
leave."""

import pytest

from herd.annotation_policy import refused
from herd.desired import desired
from herd.model import parse
from herd.settings import Settings
from herd.status import compute


@pytest.mark.parametrize(
    ("key", "refuse"),
    [
        ("nginx.ingress.kubernetes.io/configuration-snippet", True),
        ("nginx.ingress.kubernetes.io/server-snippet", True),
        ("nginx.ingress.kubernetes.io/auth-url", True),
        ("nginx.ingress.kubernetes.io/auth-tls-secret", True),
        ("nginx.ingress.kubernetes.io/mirror-target", True),
        ("nginx.ingress.kubernetes.io/server-alias", True),
        ("nginx.ingress.kubernetes.io/canary-weight", True),
        ("traefik.ingress.kubernetes.io/router.middlewares", True),
        ("nginx.ingress.kubernetes.io/proxy-body-size", False),
        ("nginx.ingress.kubernetes.io/rewrite-target", False),
        ("team", False),
    ],
)
def test_the_default_policy(key, refuse):
    assert (key in refused({key: "x"}, Settings())) is refuse


def test_the_admin_may_allow_a_risky_one_by_name_or_glob():
    settings = Settings(allowed_ingress_annotations=("nginx.ingress.kubernetes.io/auth-*",))
    notes = {
        "nginx.ingress.kubernetes.io/auth-url": "x",
        "nginx.ingress.kubernetes.io/server-snippet": "y",
    }
    assert set(refused(notes, settings)) == {"nginx.ingress.kubernetes.io/server-snippet"}


def test_a_refused_annotation_is_left_out_and_named_in_degraded():
    body = {
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "image": "i",
            "app": "a:b",
            "route": {
                "ingress": {
                    "host": "web.example.com",
                    "annotations": {
                        "team": "a",
                        "nginx.ingress.kubernetes.io/configuration-snippet": "more_set_headers x;",
                    },
                }
            },
        },
    }
    ws = parse(body)
    want = desired(ws)
    ingress = next(o for o in want.objects if o["kind"] == "Ingress")
    notes = ingress["metadata"]["annotations"]
    assert notes["team"] == "a" and not any("snippet" in k for k in notes)
    status = compute(ws, want, None, [], {}, "2026-01-01T00:00:00Z")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "AnnotationNotAllowed"
    assert "configuration-snippet (injects raw controller configuration)" in degraded["message"]
