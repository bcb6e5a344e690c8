import kopf

from herd.handlers import register_timers
from herd.settings import Settings


def test_timers_put_no_finalizer_on_webservices():
    """A finalizer would make deleting a namespace hang wherever the operator cannot see the
    deletion through (tests/integration/test_chart.py deletes one in namespaced mode)."""
    registry = kopf.OperatorRegistry()
    register_timers(Settings(autoscale_interval=15, canary_interval=5), registry)
    timers = registry._spawning.get_all_handlers()
    assert sorted((t.id, t.interval) for t in timers) == [("autoscale", 15), ("canary", 5)]
    assert not any(t.requires_finalizer for t in timers)
