"""The prometheus-operator PodMonitor of a WebService (`--pod-monitors`): the scrape its pods'
prometheus.io/* annotations ask for, for Prometheus servers that select PodMonitors instead."""

from __future__ import annotations

from typing import Any

from herd import kinds, objectmeta
from herd.model import WebService
from herd.serving import runtime, workload


def pod_monitor(ws: WebService, labels: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """One PodMonitor for both tracks' pods; `labels` are the cluster admin's (what the
    Prometheus's podMonitorSelector matches), under Herd's own, which they cannot change."""
    meta = objectmeta.metadata(ws, ws.name)
    meta["labels"] = {**dict(labels), **meta["labels"]}
    return {
        **kinds.POD_MONITOR.type_meta(),
        "metadata": meta,
        "spec": {
            # Both tracks: a track's own selector would leave the other unscraped.
            "selector": {"matchLabels": objectmeta.pods_selector(ws)},
            # Copied onto the series under the names the annotation scrape's labelmap gives
            # them (app_kubernetes_io_instance, herd_dev_track): the app metric source's PromQL
            # reads either.
            "podTargetLabels": [objectmeta.INSTANCE_LABEL, objectmeta.TRACK_LABEL],
            "podMetricsEndpoints": [{"port": workload.METRICS_PORT, "path": runtime.METRICS_PATH}],
        },
    }
