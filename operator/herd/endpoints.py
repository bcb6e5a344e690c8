"""Which Prometheus endpoints a WebService may have the operator call. Pure.

A namespace user writes `metrics.prometheusURL`; the operator's admin decides what it may be:
the default URL's origin, or one of the origins in the operator's settings. Credentials never
come from the spec (a URL with user:password@ is refused), and what is printed about a URL
carries none.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from herd.settings import Settings

_DEFAULT_PORTS = {"http": 80, "https": 443}


class NotAllowed(ValueError):
    """The URL is not one the operator's settings allow."""


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as error:
        raise NotAllowed(f"{redacted(url)} has an invalid port") from error
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def redacted(url: str) -> str:
    """The URL without user:password@, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()


def same_origin(url: str, other: str) -> bool:
    """Do both URLs name the same scheme, host and port?"""
    try:
        (scheme, host, port), (o_scheme, o_host, o_port) = _origin(url), _origin(other)
    except NotAllowed:
        return False
    return (scheme, host, port or _DEFAULT_PORTS.get(scheme)) == (
        o_scheme,
        o_host,
        o_port or _DEFAULT_PORTS.get(o_scheme),
    )


@dataclass(frozen=True)
class ServiceUrl:
    """An in-cluster Service URL, `scheme://NAME.NAMESPACE.svc[.cluster domain][:port]/path`."""

    scheme: str
    namespace: str
    name: str
    port: int
    path: str


def in_cluster_service(url: str) -> ServiceUrl | None:
    """The Service an in-cluster URL names; None for any other URL (one a laptop may reach)."""
    parts = urlsplit(url)
    labels = (parts.hostname or "").lower().split(".")
    if len(labels) < 3 or labels[2] != "svc" or not all(labels[:2]):
        return None
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if port is None:
        return None
    return ServiceUrl(parts.scheme.lower(), labels[1], labels[0], port, parts.path.rstrip("/"))


def check(url: str, settings: Settings) -> None:
    """Raise NotAllowed unless `url` is the default's origin or an allowed one."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise NotAllowed(
            "metrics.prometheusURL must not carry credentials: the operator's admin configures "
            "those"
        )
    scheme, host, port = _origin(url)
    if scheme not in _DEFAULT_PORTS or not host:
        raise NotAllowed(f"metrics.prometheusURL {url} is not an http(s) URL")
    port = port or _DEFAULT_PORTS[scheme]
    for allowed in (settings.prometheus_url, *settings.prometheus_allowed):
        a_scheme, a_host, a_port = _origin(allowed)
        exact = allowed == settings.prometheus_url or a_port is not None
        a_port = (a_port or _DEFAULT_PORTS.get(a_scheme)) if exact else None
        if (a_scheme, a_host) == (scheme, host) and (a_port is None or a_port == port):
            return
    raise NotAllowed(
        f"metrics.prometheusURL {scheme}://{host}:{port} is not a Prometheus the operator may "
        "call: ask the cluster admin to allow it (the chart's settings.prometheusAllowed), or "
        "leave it unset for the default"
    )
