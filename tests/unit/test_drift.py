"""Drift detection: when is a live object still what Herd rendered?"""

from __future__ import annotations

import pytest

from herd.drift import contains

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
