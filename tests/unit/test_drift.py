"""Drift detection: when is a live object still what Herd rendered?"""

from __future__ import annotations

import copy

import pytest

from herd.drift import contains, foreign, forged, owns_more, pointer

DESIRED = {
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "a:1",
                        "env": [{"name": "A", "value": "1"}],
                        "resources": {"limits": {"cpu": "0.5"}},
                    },
                ]
            }
        },
    },
}


def live(**changes):
    import copy

    obj = copy.deepcopy(DESIRED)
    container = obj["spec"]["template"]["spec"]["containers"][0]
    container.update(changes)
    obj["metadata"] = {"resourceVersion": "7"}
    obj["status"] = {"replicas": 2}
    return obj


@pytest.mark.parametrize(
    ("have", "same"),
    [
        (live(), True),  # extra metadata and status
        (live(imagePullPolicy="IfNotPresent"), True),  # server-side defaults
        (live(resources={"limits": {"cpu": "500m"}}), True),  # canonical quantity
        (live(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]), True),  # others' env
        (live(image="a:2"), False),  # edited by hand
        (live(env=[{"name": "A", "value": "2"}]), False),
        (live(env=[]), False),
        (live(resources={"limits": {"cpu": "1"}}), False),
        (None, False),
    ],
)
def test_contains(have, same):
    assert contains(have, DESIRED) is same


def test_unkeyed_lists_compare_in_order_and_length():
    assert contains({"a": [1, 2]}, {"a": [1, 2]})
    assert not contains({"a": [2, 1]}, {"a": [1, 2]})
    assert not contains({"a": [1, 2, 3]}, {"a": [1, 2]})


# What an API server recorded for Herd's apply of an Ingress with two annotations and TLS.
HERDS_FIELDS = {
    "f:metadata": {
        "f:annotations": {"f:team": {}, "f:nginx.ingress.kubernetes.io/proxy-body-size": {}},
        "f:labels": {"f:app": {}},
    },
    "f:spec": {
        "f:rules": {},
        "f:tls": {},
        "f:ports": {'k:{"port":8000,"protocol":"TCP"}': {".": {}, "f:port": {}}},
        "f:finalizers": {'v:"a"': {}},
    },
}
WANT = {
    "metadata": {
        "annotations": {"team": "a", "nginx.ingress.kubernetes.io/proxy-body-size": "1m"},
        "labels": {"app": "web"},
    },
    "spec": {
        "rules": [],
        "tls": [],
        "ports": [{"port": 8000, "protocol": "TCP"}],
        "finalizers": ["a"],
    },
}


def live_with(fields, manager="herd", operation="Apply"):
    entry = {"manager": manager, "operation": operation, "fieldsV1": fields}
    return {"metadata": {"managedFields": [entry]}}


def drop(path):
    want = copy.deepcopy(WANT)
    *parents, last = path
    node = want
    for key in parents:
        node = node[key]
    if isinstance(node, list):
        node.clear()
    else:
        del node[last]
    return want


@pytest.mark.parametrize(
    ("want", "more"),
    [
        pytest.param(WANT, False, id="the-same"),
        pytest.param(drop(("metadata", "annotations", "team")), True, id="an-annotation-removed"),
        pytest.param(drop(("spec", "tls")), True, id="tls-removed"),
        pytest.param(drop(("spec", "ports", 0)), True, id="a-keyed-item-removed"),
        pytest.param(drop(("spec", "finalizers", 0)), True, id="a-set-value-removed"),
    ],
)
def test_herd_owning_a_field_it_no_longer_renders_is_drift(want, more):
    assert owns_more(live_with(HERDS_FIELDS), want, "herd") is more


def test_fields_of_other_managers_are_theirs():
    assert not owns_more(live_with(HERDS_FIELDS, manager="kubectl"), {}, "herd")
    assert not owns_more(live_with(HERDS_FIELDS, operation="Update"), {}, "herd")


LIVE_DEPLOYMENT = {
    "metadata": {
        "managedFields": [
            {"manager": "herd", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {
                "manager": "kubectl-edit",
                "operation": "Update",
                "fieldsV1": {
                    "f:spec": {
                        "f:template": {
                            "f:metadata": {"f:annotations": {"f:x": {}}},
                            "f:spec": {
                                "f:hostNetwork": {},
                                "f:containers": {
                                    'k:{"name":"app"}': {"f:securityContext": {"f:privileged": {}}},
                                    'k:{"name":"sidecar"}': {".": {}, "f:image": {}, "f:name": {}},
                                },
                                "f:volumes": {
                                    'k:{"name":"host"}': {".": {}, "f:hostPath": {"f:path": {}}}
                                },
                            },
                        }
                    }
                },
            },
        ]
    },
    "spec": {
        "replicas": 2,
        "template": {
            "metadata": {"annotations": {"x": "1"}},
            "spec": {
                "hostNetwork": True,
                "containers": [
                    {"name": "app", "securityContext": {"privileged": True, "runAsNonRoot": True}},
                    {"name": "sidecar", "image": "evil"},
                ],
                "volumes": [{"name": "tmp"}, {"name": "host", "hostPath": {"path": "/"}}],
            },
        },
    },
}
HERDS_DEPLOYMENT = {
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {
                "containers": [{"name": "app", "securityContext": {"runAsNonRoot": True}}],
                "volumes": [{"name": "tmp"}],
            }
        },
    }
}


def test_fields_others_add_to_the_pod_spec_are_foreign():
    found = {path for _, path in foreign(LIVE_DEPLOYMENT, HERDS_DEPLOYMENT, "herd")}
    pod = ("spec", "template", "spec")
    assert found == {
        (*pod, "hostNetwork"),
        (*pod, "containers", 0, "securityContext", "privileged"),
        (*pod, "containers", 1),
        (*pod, "volumes", 1),
    }
    # Outside the pod spec (rollout restart's annotation) stays; so does what Herd renders.
    assert all(path[:3] == pod for path in found)


def test_foreign_paths_come_deepest_and_last_first_and_as_json_pointers():
    paths = [path for _, path in foreign(LIVE_DEPLOYMENT, HERDS_DEPLOYMENT, "herd")]
    containers = [p for p in paths if "containers" in p]
    assert containers.index(("spec", "template", "spec", "containers", 1)) < containers.index(
        ("spec", "template", "spec", "containers", 0, "securityContext", "privileged")
    )
    assert pointer(("metadata", "annotations", "a/b~c")) == "/metadata/annotations/a~1b~0c"


def test_what_herd_renders_is_never_foreign():
    assert foreign(LIVE_DEPLOYMENT, LIVE_DEPLOYMENT, "herd") == []


def _status_entry(manager: str, fields: dict, subresource: str | None = "status") -> dict:
    entry = {"manager": manager, "operation": "Update", "fieldsV1": fields}
    return {**entry, "subresource": subresource} if subresource else entry


FORGED_WEBSERVICE = {
    "metadata": {
        "managedFields": [
            _status_entry("herd", {"f:status": {"f:conditions": {}, "f:stableSpec": {}}}),
            _status_entry("herd-canary", {"f:status": {"f:canary": {}}}),
            _status_entry("herd-autoscaler", {"f:status": {"f:autoscaling": {}}}),
            _status_entry(
                "kubectl-patch",
                {
                    "f:status": {
                        ".": {},
                        "f:intent": {"f:action": {}},
                        "f:canary": {"f:stepIndex": {}},
                        "f:stableSpec": {"f:env": {}},
                        "f:gone": {},  # owned, but no longer there: nothing to remove
                    }
                },
            ),
            # Not through the status subresource: the API server drops status there.
            _status_entry("kubectl-edit", {"f:status": {"f:other": {}}}, subresource=None),
        ]
    },
    "status": {
        "conditions": [],
        "intent": {"action": "promote"},
        "canary": {"phase": "Paused", "stepIndex": 2},
        "stableSpec": {"image": "web:1", "env": [{"name": "X", "value": "1"}]},
        "autoscaling": {},
        "other": 1,
    },
}


def test_what_others_write_to_a_webservices_status_is_forged_but_the_intent():
    found = forged(
        FORGED_WEBSERVICE,
        frozenset({"herd", "herd-canary", "herd-autoscaler"}),
        frozenset({"intent"}),
    )
    assert found == [
        ("kubectl-patch", ("status", "stableSpec", "env")),
        ("kubectl-patch", ("status", "canary", "stepIndex")),
    ]


def test_nothing_is_forged_where_only_the_operator_and_intents_wrote():
    herd_only = {
        **FORGED_WEBSERVICE,
        "metadata": {"managedFields": FORGED_WEBSERVICE["metadata"]["managedFields"][:3]},
    }
    assert (
        forged(herd_only, frozenset({"herd", "herd-canary", "herd-autoscaler"}), frozenset()) == []
    )
