"""The one place Herd relies on kopf's internals, for kopf 1.45 (pinned in pyproject.toml):
tests/unit/test_kopf_compat.py fails when a kopf release moves what this touches."""

from __future__ import annotations

import dataclasses

import kopf


class KopfInternalsChanged(RuntimeError):
    """The installed kopf no longer has what Herd works around; see this module."""


def timers_without_finalizers(registry: kopf.OperatorRegistry) -> None:
    """kopf puts a finalizer on every object a timer serves, to stop the timer before the object
    goes (kopf #1074, no option). Herd's timers have nothing to clean up (owner references remove
    the children), and the finalizer made deleting a namespace hang whenever the operator could
    not see the deletion through: in namespaced mode the namespace's RoleBinding goes first; with
    a namespace pattern kopf stops watching a terminating namespace. kopf stops a timer when its
    object is deleted either way."""
    spawning = getattr(registry, "_spawning", None)
    handlers = getattr(spawning, "_handlers", None)
    if not isinstance(handlers, list) or not all(
        dataclasses.is_dataclass(h) and hasattr(h, "requires_finalizer") for h in handlers
    ):
        raise KopfInternalsChanged(
            "kopf's registry no longer keeps timers in _spawning._handlers with a "
            "requires_finalizer field: update herd.kopf_compat for this kopf version"
        )
    spawning._handlers = [  # type: ignore[union-attr]
        dataclasses.replace(handler, requires_finalizer=False) for handler in handlers
    ]
