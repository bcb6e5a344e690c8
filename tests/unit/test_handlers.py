"""What the operator registers with kopf, and the kopf internals Herd relies on."""

import inspect

import kopf
import pytest
from kopf._core.intents import registries

from herd import handlers, kinds
from herd.kopf_compat import KopfInternalsChanged, timers_without_finalizers
from herd.settings import Settings


def _registered(settings: Settings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    handlers.register(settings, registry)
    return registry


def test_timers_put_no_finalizer_on_webservices():
    """A finalizer would make deleting a namespace hang wherever the operator cannot see the
    deletion through (tests/integration/test_chart.py deletes one in namespaced mode)."""
    registry = _registered(Settings(autoscale_interval=15, canary_interval=5, retry_interval=30))
    timers = registry._spawning.get_all_handlers()
    assert sorted((t.id, t.interval) for t in timers) == [
        ("autoscale", 15),
        ("canary", 5),
        ("retry", 30),
    ]
    assert not any(t.requires_finalizer for t in timers)


def test_kopf_still_decides_timer_finalizers_from_the_field_herd_clears():
    """kopf_compat rewrites `_spawning._handlers`; kopf must still read `requires_finalizer`
    from there, or a kopf upgrade silently brings the finalizer back."""
    source = inspect.getsource(registries.SpawningRegistry.requires_finalizer)
    assert "self._handlers" in source and "handler.requires_finalizer" in source


def test_changed_internals_fail_loudly():
    class Elsewhere:
        pass

    with pytest.raises(KopfInternalsChanged):
        timers_without_finalizers(Elsewhere())  # type: ignore[arg-type]


def test_every_child_kind_is_watched():
    """A child deleted by hand comes back on its own watch event, ScaledObjects included."""
    registry = _registered(Settings())
    watched = {h.id for h in registry._watching.get_all_handlers()}
    assert watched == {f"child-{kind.plural}" for kind in kinds.CHILDREN} | {
        "status-forged",
        "pods",
    }


def test_importing_the_module_registers_everything_for_kopf_run():
    default = kopf.get_default_registry()
    assert {h.id for h in default._spawning.get_all_handlers()} == {"autoscale", "canary", "retry"}
    assert len(default._watching.get_all_handlers()) == len(kinds.CHILDREN) + 2
    assert default._changing.get_all_handlers()


@pytest.mark.parametrize(
    ("manager", "fields", "reconciled"),
    [
        ("kubectl-patch", {"f:canary": {}}, True),  # a forged report
        ("kubectl-patch", {"f:intent": {}}, False),  # an intent: the canary timer reads it
        ("herd-canary", {"f:canary": {}}, False),  # the operator's own writes trigger nothing
    ],
)
def test_only_a_status_someone_else_wrote_triggers_a_reconcile(manager, fields, reconciled):
    entry = {"manager": manager, "subresource": "status", "fieldsV1": {"f:status": fields}}
    body = {"metadata": {"managedFields": [entry]}, "status": {"canary": {}, "intent": {}}}
    assert handlers._status_forged(kopf.Body(body)) is reconciled
