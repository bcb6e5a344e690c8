"""Which Ingress annotations a WebService may set. Pure.

A namespace user writes `spec.route.ingress.annotations`; some annotations hand the ingress
controller raw configuration (the snippet family behind CVE-2025-1974, "IngressNightmare"),
other hosts, auth endpoints, request mirrors, or Herd's own canary switches. Those are refused
unless the cluster admin allows them by name (--allow-ingress-annotation).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from herd.settings import Settings

#: Refused unless allowed: each pattern with why, as the Degraded message says it.
RISKY: dict[str, str] = {
    "nginx.ingress.kubernetes.io/*snippet*": "injects raw controller configuration",
    "nginx.ingress.kubernetes.io/auth-*": "points the controller at auth endpoints and Secrets",
    "nginx.ingress.kubernetes.io/global-auth-*": "changes the controller's global auth",
    "nginx.ingress.kubernetes.io/mirror-*": "copies requests to another destination",
    "nginx.ingress.kubernetes.io/server-alias": "serves other host names",
    "nginx.ingress.kubernetes.io/canary*": "is Herd's own canary switch",
    "traefik.ingress.kubernetes.io/router.middlewares": "attaches arbitrary Traefik middlewares",
}


def refused(annotations: dict[str, str], settings: Settings) -> dict[str, str]:
    """The keys of `annotations` the policy refuses, each with why."""
    out = {}
    for key in annotations:
        if any(fnmatchcase(key, allowed) for allowed in settings.allowed_ingress_annotations):
            continue
        why = next((why for pattern, why in RISKY.items() if fnmatchcase(key, pattern)), None)
        if why is not None:
            out[key] = why
    return out
