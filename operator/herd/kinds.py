"""Every kind of object Herd reads or writes, stated once: the API client builds its paths from
this table, the operator watches every child kind in it, the renderers take their apiVersion and
kind from it, and a test holds the chart's RBAC to it. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from herd import api


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str  # group/version, or "v1" for the core group
    plural: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def resource(self) -> str:
        """plural.group, as a CRD and kubectl name a kind of an API group."""
        return f"{self.plural}.{self.group}"

    def type_meta(self) -> dict[str, str]:
        """The apiVersion and kind fields of an object of this kind."""
        return {"apiVersion": self.api_version, "kind": self.kind}


@dataclass(frozen=True)
class Ref:
    """One object: its kind (as in `Kind.kind`), namespace and name."""

    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Ref:
        return cls(obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])


WEBSERVICE = Kind(api.KIND, f"{api.GROUP}/{api.VERSION}", api.PLURAL)
DEPLOYMENT = Kind("Deployment", "apps/v1", "deployments")
SERVICE = Kind("Service", "v1", "services")
INGRESS = Kind("Ingress", "networking.k8s.io/v1", "ingresses")
HTTP_ROUTE = Kind("HTTPRoute", "gateway.networking.k8s.io/v1", "httproutes")
POD_DISRUPTION_BUDGET = Kind("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets")
SCALED_OBJECT = Kind("ScaledObject", "keda.sh/v1alpha1", "scaledobjects")
POD_MONITOR = Kind("PodMonitor", "monitoring.coreos.com/v1", "podmonitors")

#: The kinds a WebService owns: watched, so an object edited or deleted by hand is restored.
CHILDREN: tuple[Kind, ...] = (
    DEPLOYMENT,
    SERVICE,
    INGRESS,
    HTTP_ROUTE,
    POD_DISRUPTION_BUDGET,
    SCALED_OBJECT,
    POD_MONITOR,
)
#: Read only, never written: the pods of a WebService's Deployments, for why they do not start.
POD = Kind("Pod", "v1", "pods")
#: The leader lock of `herd operator --lease` (herd.leadership), in the operator's namespace.
LEASE = Kind("Lease", "coordination.k8s.io/v1", "leases")
#: What the operator watches and reads, not owning it.
OBSERVED: tuple[Kind, ...] = (POD,)
BY_KIND: dict[str, Kind] = {k.kind: k for k in (WEBSERVICE, *CHILDREN, *OBSERVED)}
