"""A canary status as the canary controller writes it, for the CLI's tests."""

from __future__ import annotations

PAUSED = {
    "phase": "Paused",
    "stepIndex": 2,
    "steps": 4,
    "weight": 10,
    "stableRevision": "ab12cd34ef",
    "canaryRevision": "9f8e7d6c5b",
    "failedChecks": 1,
    "inconclusiveChecks": 0,
    "pausedReason": "waiting for herd promote",
    "lastAnalysis": {
        "time": "2026-11-21T09:10:00Z",
        "requests": 120,
        "errorRate": 0.004,
        "p99LatencyMs": 85.0,
        "verdict": "pass",
        "message": "within thresholds",
    },
    "message": "step 3/4: pause until promoted",
    "startTime": "2026-11-21T09:00:00Z",
}
