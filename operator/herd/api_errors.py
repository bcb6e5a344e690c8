"""A request the Kubernetes API server refused or could not answer, as a value: raised by the
client in `herd.kube`, read by the reconciler and by the messages the CLI prints. Pure."""

from __future__ import annotations

_TRANSIENT = {408, 429, 500, 502, 503, 504}


class ApiError(Exception):
    """A request the API server refused or could not answer."""

    def __init__(self, status: int, reason: str, message: str, causes: tuple[str, ...] = ()):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes

    @property
    def namespace_terminating(self) -> bool:
        """The namespace is being deleted: nothing new can be created in it, nor need be."""
        return "NamespaceTerminating" in self.causes

    @property
    def transient(self) -> bool:
        """Worth retrying as is (the server or the network), as opposed to a rejected object."""
        return self.status in _TRANSIENT or self.status == 0
