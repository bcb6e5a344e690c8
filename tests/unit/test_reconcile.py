"""One reconcile pass against an in-memory API: what it creates, restores, prunes and reports,
and that an idle WebService costs no writes."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from herd.api_errors import ApiError
from herd.kinds import Ref
from herd.reconcile import Outcome, TransientError, reconcile
from herd.settings import Settings
from tests.support.fake_kube import FakeKube, FakePrometheus

NOW = 1_700_000_000.0
NS, NAME, UID = "ns", "web", "u1"
WS = Ref("WebService", NS, NAME)
DEPLOYMENT = Ref("Deployment", NS, NAME)
SERVICE = Ref("Service", NS, NAME)
INGRESS = Ref("Ingress", NS, NAME)
HTTP_ROUTE = Ref("HTTPRoute", NS, NAME)
PDB = Ref("PodDisruptionBudget", NS, NAME)

INGRESS_ROUTE = {"ingress": {"host": "web.example.com"}}
GATEWAY_ROUTE = {"httpRoute": {"host": "web.example.com", "gateway": {"name": "gw"}}}


def webservice(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "herd.dev/v1alpha1",
        "kind": "WebService",
        "metadata": {"name": NAME, "namespace": NS, "uid": UID, "generation": 1},
        "spec": {"image": "web:1", "app": "app.main:app", **spec},
    }


def run(kube: FakeKube, now: float = NOW) -> Outcome:
    return reconcile(kube, FakePrometheus(), Settings(), NS, NAME, now)


def status(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[WS].get("status", {})


def condition(kube: FakeKube, kind: str) -> dict[str, Any]:
    return next(c for c in status(kube)["conditions"] if c["type"] == kind)


def reasons(outcome: Outcome) -> list[str]:
    return [reason for _, reason, _ in outcome.events]


def served(**spec: Any) -> FakeKube:
    """A WebService whose first pass ran and whose Deployment rolled out; calls reset."""
    kube = FakeKube()
    kube.put(webservice(**spec))
    run(kube)
    kube.roll_out(NAME)
    run(kube)
    kube.reset_calls()
    return kube


def set_spec(kube: FakeKube, **spec: Any) -> None:
    """A user's edit of the spec: fields given replace theirs, None removes one."""

    def change(ws: dict[str, Any]) -> None:
        for key, value in spec.items():
            if value is None:
                ws["spec"].pop(key, None)
            else:
                ws["spec"][key] = value

    kube.edit(WS, change)


# --- Created. ---


@pytest.mark.parametrize(
    "spec, children",
    [
        pytest.param({}, {DEPLOYMENT, SERVICE}, id="plain"),
        pytest.param({"route": INGRESS_ROUTE}, {DEPLOYMENT, SERVICE, INGRESS}, id="ingress"),
        pytest.param({"route": GATEWAY_ROUTE}, {DEPLOYMENT, SERVICE, HTTP_ROUTE}, id="gateway-api"),
        pytest.param({"replicas": 3}, {DEPLOYMENT, SERVICE, PDB}, id="replicas-3-budget"),
    ],
)
def test_first_pass_creates_the_children_and_writes_status(spec, children):
    kube = FakeKube()
    kube.put(webservice(**spec))

    outcome = run(kube)

    assert set(kube.written("apply")) == children
    assert kube.count("apply") == len(children)
    assert kube.count("delete") == 0
    assert set(kube.objects) == {WS, *children}
    assert kube.count("apply_status") == 1 and outcome.status_changed
    assert outcome.writes == len(children) + 1
    assert reasons(outcome) == ["Created"] * len(children)
    assert outcome.subject["metadata"]["uid"] == UID
    for ref in children:
        meta = kube.objects[ref]["metadata"]
        assert meta["ownerReferences"][0]["uid"] == UID
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "herd"
    assert status(kube)["observedGeneration"] == 1
    assert condition(kube, "Ready")["status"] == "False"
    assert condition(kube, "Degraded")["status"] == "False"
    assert "stableSpec" not in status(kube)  # nothing has rolled out yet


# --- Unchanged: an idle WebService costs no writes. ---


def test_rolled_out_pass_writes_only_status_then_nothing():
    kube = FakeKube()
    kube.put(webservice())
    run(kube)
    kube.roll_out(NAME)
    kube.reset_calls()

    second = run(kube)

    # The stable version is kept where only the operator writes (herd.held), and reported.
    assert kube.written("apply") == [SERVICE] and kube.count("delete") == 0
    notes = kube.objects[SERVICE]["metadata"]["annotations"]
    assert json.loads(notes["herd.dev/stable-spec"])["image"] == "web:1"
    assert "herd.dev/stable-spec" not in kube.objects[DEPLOYMENT]["metadata"].get("annotations", {})
    assert kube.written("apply_status") == [WS]
    assert second.writes == 2 and second.status_changed
    assert reasons(second) == ["Ready"]
    assert condition(kube, "Ready")["status"] == "True"
    assert condition(kube, "Progressing")["reason"] == "RolloutComplete"
    assert status(kube)["stableSpec"]["image"] == "web:1"
    kube.reset_calls()

    third = run(kube)

    assert third.writes == 0 and not third.status_changed and third.events == []
    assert kube.writes == 0


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({}, id="plain"),
        pytest.param({"route": INGRESS_ROUTE, "replicas": 3}, id="ingress-and-budget"),
        pytest.param({"route": GATEWAY_ROUTE}, id="gateway-api"),
        pytest.param({"env": [{"name": "MODE", "value": "prod"}]}, id="env"),
    ],
)
def test_an_idle_webservice_costs_no_writes(spec):
    kube = served(**spec)
    if spec.get("replicas"):  # two passes: the Deployment was rolled out at 1 replica
        kube.roll_out(NAME)
        run(kube)
        kube.reset_calls()

    outcome = run(kube)

    assert outcome.writes == 0 and kube.writes == 0
    assert outcome.events == []


# --- Drift: whatever a hand changed or deleted comes back. ---


def _env(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return deployment["spec"]["template"]["spec"]["containers"][0]["env"]


def _set_env(name: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(deployment: dict[str, Any]) -> None:
        next(e for e in _env(deployment) if e["name"] == name)["value"] = value

    return change


def _set_replicas(deployment: dict[str, Any]) -> None:
    deployment["spec"]["replicas"] = 5


def _set_port(service: dict[str, Any]) -> None:
    service["spec"]["ports"][0]["port"] = 1234


def _set_annotation(ingress: dict[str, Any]) -> None:
    ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] = "99m"


@pytest.mark.parametrize(
    "ref, change, event",
    [
        pytest.param(DEPLOYMENT, _set_replicas, "Updated", id="deployment-replicas"),
        pytest.param(DEPLOYMENT, _set_env("MODE", "debug"), "Updated", id="user-env-var"),
        pytest.param(DEPLOYMENT, _set_env("WEB_CONCURRENCY", "64"), "Updated", id="herd-env-var"),
        pytest.param(SERVICE, _set_port, "Updated", id="service-port"),
        pytest.param(INGRESS, _set_annotation, "Updated", id="ingress-annotation"),
        pytest.param(SERVICE, None, "Created", id="service-deleted-by-hand"),
        pytest.param(DEPLOYMENT, None, "Created", id="deployment-deleted-by-hand"),
        pytest.param(INGRESS, None, "Created", id="ingress-deleted-by-hand"),
    ],
)
def test_drift_is_applied_again(ref, change, event):
    kube = served(route=INGRESS_ROUTE, env=[{"name": "MODE", "value": "prod"}])
    rendered = copy.deepcopy(kube.objects[ref])
    if change is None:
        kube.remove(ref)
    else:
        kube.edit(ref, change)

    outcome = run(kube)

    assert kube.written("apply") == [ref]
    assert kube.count("delete") == 0
    assert [m for _, r, m in outcome.events if r == event and f"{ref.kind} {ref.name}" in m]
    restored = kube.objects[ref]
    assert restored["spec"] == rendered["spec"]
    for key in ("labels", "annotations", "ownerReferences"):
        if change is None and ref == DEPLOYMENT and key == "annotations":
            # What the operator kept went with the Deployment: kept again once it rolls out
            # (status.stableSpec is a report, anyone with status access may have written it).
            assert not restored["metadata"].get(key)
            continue
        assert restored["metadata"].get(key) == rendered["metadata"].get(key)
    kube.reset_calls()
    run(kube)  # restored: nothing more to apply
    assert kube.count("apply") == 0


# --- What the API server refuses. ---


def test_a_rejected_apply_degrades_the_webservice_and_the_rest_is_still_applied():
    kube = FakeKube()
    kube.put(webservice())
    kube.fail("apply", "Deployment", ApiError(422, "Invalid", "spec.template: Invalid value"))

    outcome = run(kube)

    assert kube.written("apply") == [DEPLOYMENT, SERVICE]
    assert DEPLOYMENT not in kube.objects and SERVICE in kube.objects
    degraded = condition(kube, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ApplyFailed")
    assert "Deployment web" in degraded["message"]
    assert "spec.template: Invalid value" in degraded["message"]
    assert condition(kube, "Ready")["reason"] == "DeploymentMissing"
    assert ("Warning", "ApplyFailed", degraded["message"]) in outcome.events
    assert outcome.status_changed


def test_a_rejected_apply_of_a_live_object_keeps_reporting_what_runs():
    kube = served()
    set_spec(kube, image="web:2")
    kube.fail("apply", "Deployment", ApiError(422, "Invalid", "no"))

    outcome = run(kube)

    assert condition(kube, "Degraded")["reason"] == "ApplyFailed"
    assert status(kube)["readyReplicas"] == 1  # from the Deployment as it was read
    assert "Updated" not in reasons(outcome)
    assert kube.objects[DEPLOYMENT]["metadata"]["generation"] == 1


def test_a_rejected_template_never_becomes_the_stable_spec():
    kube = served()
    set_spec(kube, image="web:2")
    kube.fail("apply", "Deployment", ApiError(422, "Invalid", "denied by policy"))

    run(kube)

    assert status(kube)["stableSpec"]["image"] == "web:1"  # web:2 never ran


TERMINATING = ApiError(
    403, "Forbidden", "namespace ns is being terminated", ("NamespaceTerminating",)
)


@pytest.mark.parametrize(
    "verb, kind",
    [
        pytest.param("apply", "Deployment", id="apply-deployment"),
        pytest.param("apply", "Service", id="apply-service"),
    ],
)
def test_a_terminating_namespace_ends_the_pass_quietly(verb, kind):
    kube = FakeKube()
    kube.put(webservice())
    kube.fail(verb, kind, TERMINATING)

    assert run(kube) == Outcome()
    assert kube.count("apply_status") == 0


@pytest.mark.parametrize(
    "verb, kind, error",
    [
        pytest.param(
            "apply", "Deployment", ApiError(503, "ServiceUnavailable", "x"), id="apply-503"
        ),
        pytest.param("apply", "Deployment", ApiError(429, "TooManyRequests", "x"), id="apply-429"),
        pytest.param("apply", "Deployment", ApiError(0, "Unreachable", "refused"), id="apply-down"),
        pytest.param("get", "Deployment", ApiError(500, "InternalError", "x"), id="get-child-500"),
        pytest.param("apply_status", "WebService", ApiError(504, "Timeout", "x"), id="status-504"),
        pytest.param("delete", "Ingress", ApiError(503, "ServiceUnavailable", "x"), id="prune-503"),
        pytest.param(
            "get",
            "WebService",
            ApiError(503, "ServiceUnavailable", "x"),
            id="get-ws-503",
        ),
    ],
)
def test_transient_api_errors_are_retried(verb, kind, error):
    kube = served(route=INGRESS_ROUTE)
    set_spec(kube, image="web:2", route=None)  # something to apply, something to prune
    kube.fail(verb, kind, error)

    with pytest.raises(TransientError):
        run(kube)


def test_a_status_write_to_a_deleted_webservice_is_no_error():
    kube = FakeKube()
    kube.put(webservice())
    kube.fail("apply_status", "WebService", ApiError(404, "NotFound", "gone"))

    outcome = run(kube)

    assert not outcome.status_changed
    assert outcome.writes == 2  # the Deployment and the Service


# --- A spec that cannot be served. ---


@pytest.mark.parametrize(
    "spec, message",
    [
        pytest.param({"resources": {"limits": {"cpu": "lots"}}}, "lots", id="cpu-lots"),
        pytest.param({"resources": {"requests": {"memory": "1XB"}}}, "1XB", id="memory-unit"),
        pytest.param({"route": {}}, "spec.route", id="route-without-router"),
        pytest.param(
            {"metrics": {"source": "ingress-nginx"}}, "ingress-nginx", id="metrics-source"
        ),
        pytest.param({"image": ""}, "spec.image", id="no-image"),
        # Valid quantities for the API server, beyond any amount a pod can have.
        pytest.param({"resources": {"limits": {"cpu": "1e400"}}}, "1e400", id="cpu-1e400"),
        pytest.param({"resources": {"limits": {"memory": "9Ei"}}}, "9Ei", id="memory-9Ei"),
    ],
)
def test_an_invalid_spec_is_degraded_and_renders_nothing(spec, message):
    kube = FakeKube()
    kube.put(webservice(**spec))

    outcome = run(kube)

    assert kube.count("apply") == 0 and kube.count("delete") == 0
    assert set(kube.objects) == {WS}
    degraded = condition(kube, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "InvalidSpec")
    assert message in degraded["message"]
    assert condition(kube, "Ready")["reason"] == "InvalidSpec"
    assert ("Warning", "InvalidSpec", degraded["message"]) in outcome.events
    kube.reset_calls()
    assert run(kube).writes == 0  # reported once


def test_an_invalid_edit_leaves_what_runs_alone():
    kube = served(route=INGRESS_ROUTE)
    set_spec(kube, resources={"limits": {"cpu": "lots"}}, route=None)

    run(kube)

    assert kube.count("apply") == 0 and kube.count("delete") == 0
    assert {DEPLOYMENT, SERVICE, INGRESS} <= set(kube.objects)
    assert condition(kube, "Degraded")["reason"] == "InvalidSpec"
    assert status(kube)["observedGeneration"] == 2
    assert status(kube)["stableSpec"]["image"] == "web:1"  # what was observed stays


# --- Nothing to reconcile. ---


def _deleting(ws: dict[str, Any]) -> None:
    ws["metadata"]["deletionTimestamp"] = "2023-11-14T22:13:20Z"


@pytest.mark.parametrize(
    "change",
    [pytest.param(None, id="deleted"), pytest.param(_deleting, id="being-deleted")],
)
def test_a_deleted_webservice_is_left_alone(change):
    kube = served()
    if change is None:
        kube.remove(WS)
    else:
        kube.edit(WS, change)

    assert run(kube) == Outcome()
    assert kube.calls == [("get", WS)]


# --- Pruning: what is no longer wanted goes, if Herd made it for this WebService. ---


@pytest.mark.parametrize(
    "before, after, deleted, created",
    [
        pytest.param(
            {"route": INGRESS_ROUTE}, {"route": None}, [INGRESS], [], id="ingress-removed"
        ),
        pytest.param(
            {"route": GATEWAY_ROUTE}, {"route": None}, [HTTP_ROUTE], [], id="httproute-removed"
        ),
        pytest.param(
            {"route": INGRESS_ROUTE},
            {"route": GATEWAY_ROUTE},
            [INGRESS],
            [HTTP_ROUTE],
            id="ingress-to-httproute",
        ),
        pytest.param(
            {"route": GATEWAY_ROUTE},
            {"route": INGRESS_ROUTE},
            [HTTP_ROUTE],
            [INGRESS],
            id="httproute-to-ingress",
        ),
        pytest.param({"replicas": 3}, {"replicas": 1}, [PDB], [], id="budget-at-one-replica"),
    ],
)
def test_objects_no_longer_wanted_are_pruned(before, after, deleted, created):
    kube = served(**before)
    set_spec(kube, **after)

    outcome = run(kube)

    assert kube.written("delete") == deleted
    assert [r for r in kube.written("apply") if r not in (DEPLOYMENT,)] == created
    for ref in deleted:
        assert ref not in kube.objects
        assert ("Normal", "Deleted", f"deleted {ref.kind} {ref.name}") in outcome.events
    for ref in created:
        assert ref in kube.objects
        assert ("Normal", "Created", f"created {ref.kind} {ref.name}") in outcome.events


def _foreign_ingress(labels: dict[str, str], owner_uid: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": NAME, "namespace": NS, "labels": labels}
    if owner_uid is not None:
        meta["ownerReferences"] = [{"kind": "WebService", "name": NAME, "uid": owner_uid}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": {}}


HERD = {"app.kubernetes.io/managed-by": "herd"}


@pytest.mark.parametrize(
    "ingress",
    [
        pytest.param(_foreign_ingress(HERD, "another-uid"), id="other-owner-uid"),
        pytest.param(_foreign_ingress(HERD, None), id="no-owner"),
        pytest.param(_foreign_ingress({"app.kubernetes.io/managed-by": "helm"}, UID), id="helm"),
        pytest.param(_foreign_ingress({}, UID), id="unlabelled"),
    ],
)
def test_a_same_named_object_herd_did_not_make_is_left_alone(ingress):
    kube = served()
    kube.put(ingress)

    outcome = run(kube)

    assert kube.count("delete") == 0
    assert kube.objects[INGRESS]["metadata"]["labels"] == ingress["metadata"]["labels"]
    assert "Deleted" not in reasons(outcome)


def test_an_object_of_a_previous_webservice_of_the_same_name_is_left_alone():
    kube = served(route=INGRESS_ROUTE)
    # The WebService was deleted and created again: same name, new uid, no route.
    kube.put({**webservice(), "metadata": {**webservice()["metadata"], "uid": "u2"}})

    run(kube)

    assert INGRESS in kube.objects
    assert kube.count("delete") == 0


def test_a_bug_of_herds_is_degraded_internal_error_not_a_crash(monkeypatch):
    """Whatever goes wrong inside the operator, the user sees a reason, and the operator keeps
    serving: the next WebService (another name) is reconciled as usual."""
    from herd import desired

    real = desired.desired

    def broken(ws, *args):
        if ws.name == NAME:
            raise ZeroDivisionError("division by zero")
        return real(ws, *args)

    monkeypatch.setattr(desired, "desired", broken)
    kube = FakeKube()
    kube.put(webservice())
    other = webservice()
    other["metadata"] = {**other["metadata"], "name": "other", "uid": "u2"}
    kube.put(other)

    outcome = run(kube)
    reconcile(kube, FakePrometheus(), Settings(), NS, "other", NOW)

    degraded = condition(kube, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "InternalError")
    assert "ZeroDivisionError" in degraded["message"]
    assert ("Warning", "InternalError", degraded["message"]) in outcome.events
    assert Ref("Deployment", NS, "other") in kube.objects


@pytest.mark.parametrize(
    ("claimed", "adopted"),
    [
        pytest.param({"image": "web:1", "app": "app.main:app"}, True, id="what-runs"),
        pytest.param({"image": "evil:1", "app": "app.main:app"}, False, id="what-does-not-run"),
    ],
)
def test_a_stable_spec_an_older_operator_kept_in_status_is_adopted_only_if_it_runs(
    claimed, adopted
):
    """Upgrading from an operator that kept the stable version in status: taken over once,
    and only when the stable Deployment really runs it."""
    kube = served(canary={"steps": [{"setWeight": 20}, {"pause": {}}]})

    def older_operator(service: dict[str, Any]) -> None:
        service["metadata"].pop("annotations", None)

    kube.edit(SERVICE, older_operator)
    kube.apply_status(NS, NAME, {"stableSpec": claimed}, manager="herd")
    set_spec(kube, image="web:2")

    run(kube)

    canary = Ref("Deployment", NS, f"{NAME}-canary")
    assert (canary in kube.objects) is adopted  # with a known stable version, a canary
    image = kube.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == ("web:1" if adopted else "web:2")


def test_what_an_earlier_operator_kept_on_the_stable_deployment_is_moved_to_the_service():
    kube = served(canary={"steps": [{"setWeight": 20}, {"pause": {}}]})
    notes = dict(kube.objects[SERVICE]["metadata"]["annotations"])

    def earlier_operator(obj: dict[str, Any]) -> None:
        obj["metadata"]["annotations"] = notes if obj["kind"] == "Deployment" else {}

    kube.edit(SERVICE, earlier_operator)
    kube.edit(DEPLOYMENT, earlier_operator)
    # Only the Deployment knows: not the reported status.stableSpec either.
    kube.edit(WS, lambda ws: ws["status"].pop("stableSpec"))
    set_spec(kube, image="web:2")

    run(kube)

    assert Ref("Deployment", NS, f"{NAME}-canary") in kube.objects  # the stable version known
    image = kube.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "web:1"
    kept = kube.objects[SERVICE]["metadata"]["annotations"]
    assert json.loads(kept["herd.dev/stable-spec"])["image"] == "web:1"


@pytest.mark.parametrize("verb", ["get", "apply"])
def test_rbac_lost_for_one_kind_degrades_and_the_rest_is_served(verb):
    kube = FakeKube()
    kube.put(webservice(route=INGRESS_ROUTE))
    kube.fail(verb, "Ingress", ApiError(403, "Forbidden", 'ingresses "web" is forbidden'))

    outcome = run(kube)

    assert {DEPLOYMENT, SERVICE} <= set(kube.objects) and INGRESS not in kube.objects
    degraded = condition(kube, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "Forbidden")
    assert "Ingress web" in degraded["message"] and "RBAC" in degraded["message"]
    assert ("Warning", "Forbidden", degraded["message"]) in outcome.events


def test_what_a_user_writes_to_status_besides_the_intent_is_removed():
    """herd-promoter may patch the status for `status.intent`; a forged report (here before
    any rollout: nothing would rewrite it) is removed, and never read as the operator's."""
    kube = FakeKube()
    forged_by = {
        "manager": "kubectl-patch",
        "operation": "Update",
        "subresource": "status",
        "fieldsV1": {"f:status": {"f:canary": {}, "f:intent": {}}},
    }
    body = webservice()
    body["metadata"]["managedFields"] = [forged_by]
    body["status"] = {
        "canary": {"phase": "RolledBack", "canaryRevision": "anything"},
        "intent": {"action": "retry", "id": "1"},
    }
    kube.put(body)

    outcome = run(kube)

    assert "canary" not in status(kube) and status(kube)["intent"] == {"action": "retry", "id": "1"}
    assert ("remove_fields", WS) in kube.calls
    assert any(
        reason == "StatusRemoved" and "status.canary (by kubectl-patch)" in message
        for _, reason, message in outcome.events
    )
    assert condition(kube, "Degraded")["status"] == "False"


# --- Pods: why they do not start, read only while some are unavailable. ---


def _stuck_pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    failed = {"exitCode": 1, "reason": "Error", "message": "the image's Python is CPython 3.9.2"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "status": {
            "initContainerStatuses": [
                {"name": "herd-runtime-check", "state": {"terminated": failed}}
            ]
        },
    }


def _unavailable(deployment: dict[str, Any]) -> None:
    deployment["status"] = {"replicas": 1, "unavailableReplicas": 1}


def test_a_pod_that_cannot_start_degrades_the_webservice_with_its_reason():
    kube = FakeKube()
    kube.put(webservice(runtime="inject"))
    run(kube)
    labels = kube.objects[DEPLOYMENT]["spec"]["template"]["metadata"]["labels"]
    kube.put(_stuck_pod("web-abc", labels))
    kube.put(_stuck_pod("other-abc", {**labels, "app.kubernetes.io/instance": "other"}))
    kube.edit(DEPLOYMENT, _unavailable)

    outcome = run(kube)

    degraded = condition(kube, "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "RuntimeIncompatible"
    assert "CPython 3.9.2" in degraded["message"] and "(web-abc)" in degraded["message"]
    assert "other-abc" not in degraded["message"]
    assert "RuntimeIncompatible" in reasons(outcome)


def test_pods_are_not_listed_while_every_pod_is_available():
    kube = served()
    run(kube)
    assert kube.count("list") == 0


def test_an_operator_that_may_not_list_pods_serves_on_without_the_reasons():
    kube = FakeKube()
    kube.put(webservice())
    run(kube)
    kube.edit(DEPLOYMENT, _unavailable)
    kube.fail("list", "Pod", ApiError(403, "Forbidden", "pods is forbidden"))

    run(kube)

    assert condition(kube, "Degraded")["status"] == "False"
