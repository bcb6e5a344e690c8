"""The one module that talks to the Kubernetes API: server-side apply, reads, deletes, status.

Synchronous (kopf runs sync handlers in its thread pool). Every request is counted by verb in
the operator's metrics, so "API writes per reconcile" and "no writes when idle" are measurable.
"""

from __future__ import annotations

import email.utils
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol
from urllib.parse import quote

import kubernetes
import urllib3
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException

from herd import kinds
from herd.api_errors import ApiError
from herd.endpoints import in_cluster_service, redacted
from herd.kinds import Kind, Ref
from herd.objectmeta import RECONCILER_MANAGER
from herd.operator_metrics import API_REQUESTS

FIELD_MANAGER = RECONCILER_MANAGER
#: How long an answer of API discovery is trusted: reconciles ask for every WebService, and a
#: CRD installed meanwhile is seen within this long.
DISCOVERY_SECONDS = 30.0


class KubeApi(Protocol):
    """What the operator's loops ask of the Kubernetes API; `Kube` talks to a real API server,
    tests/support/fake_kube.py keeps objects in memory."""

    def get(self, ref: Ref) -> dict[str, Any] | None: ...

    def list(self, kind: Kind, namespace: str, selector: str) -> list[dict[str, Any]]: ...

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    def delete(self, ref: Ref) -> bool: ...

    def apply_status(
        self, namespace: str, name: str, status: dict[str, Any], manager: str = FIELD_MANAGER
    ) -> None: ...

    def scale(self, namespace: str, name: str, replicas: int, manager: str) -> None: ...

    def remove_fields(
        self, ref: Ref, pointers: list[str], subresource: str | None = None
    ) -> dict[str, Any]: ...

    def server_time(self) -> float | None: ...

    def served(self, kind: Kind) -> bool: ...


class UserApi(Protocol):
    """What the `herd` rollout commands and `herd dashboard` ask of the API server, with the
    user's own identity; `Kube` talks to a real one, tests/support/fake_user_kube.py keeps
    WebServices in memory."""

    @property
    def server(self) -> str: ...

    def get_webservice(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def list_webservices(self, namespace: str | None) -> list[dict[str, Any]]: ...

    def write_intent(self, namespace: str, name: str, intent: dict[str, Any]) -> dict[str, Any]: ...

    def watch_webservices(
        self, namespace: str | None, resource_version: str | None, timeout_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]: ...

    def can_i(
        self, verb: str, resource: str, subresource: str, namespace: str, name: str
    ) -> tuple[bool, str]: ...

    def list_events(self, namespace: str, name: str) -> list[dict[str, Any]]: ...

    def proxy_get(self, url: str, fields: dict[str, str], timeout: float) -> tuple[int, bytes]: ...


def _collection(kind: Kind, namespace: str) -> str:
    prefix = "/api/v1" if kind.api_version == "v1" else f"/apis/{kind.api_version}"
    return f"{prefix}/namespaces/{namespace}/{kind.plural}"


def _path(ref: Ref, subresource: str | None = None) -> str:
    path = f"{_collection(kinds.BY_KIND[ref.kind], ref.namespace)}/{ref.name}"
    return f"{path}/{subresource}" if subresource else path


class Kube:
    def __init__(
        self,
        client: ApiClient,
        monotonic: Callable[[], float] = time.monotonic,
        writable: Callable[[], bool] = lambda: True,
    ):
        self.client = client
        #: Asked before every write: False once this replica may no longer write (the leader
        #: lease's fence, herd.leadership).
        self.writable = writable
        self._clock = threading.local()  # the Date of this thread's last answer
        self._monotonic = monotonic
        self._served: dict[Kind, tuple[float, bool]] = {}  # kind: (when asked, answer)

    def server_time(self) -> float | None:
        """The API server's clock at this thread's last answer (whole seconds): one clock for
        every operator replica, where their own may differ."""
        seen = getattr(self._clock, "seen", None)
        try:
            return email.utils.parsedate_to_datetime(seen).timestamp() if seen else None
        except (TypeError, ValueError):
            return None

    @classmethod
    def from_environment(
        cls, connections: int, writable: Callable[[], bool] = lambda: True
    ) -> Kube:
        """In-cluster credentials when running in a pod, else the kubeconfig ($KUBECONFIG);
        `connections` kept open, one per thread that calls (the client's default, 5 per CPU,
        made the operator's workers open a new TLS connection for most requests)."""
        try:
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()
        configuration = Configuration.get_default_copy()
        configuration.connection_pool_maxsize = connections
        return cls(ApiClient(configuration), writable=writable)

    def _request(
        self,
        method: str,
        path: str,
        kind: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        timeout: float = 30,
    ) -> dict[str, Any]:
        if method != "GET" and not self.writable():
            raise ApiError(0, "NotLeader", "this replica no longer holds the leader lease")
        API_REQUESTS.labels(method, kind).inc()
        request = self.client.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(*request, _request_timeout=timeout)
            response.read()
            self._clock.seen = response.getheader("Date")
        except ApiException as error:
            raise ApiError(error.status or 0, error.reason or "", str(error)) from error
        except (OSError, urllib3.exceptions.HTTPError) as error:  # refused, reset, timed out
            raise ApiError(0, "Unreachable", str(error)) from error
        try:
            data = json.loads(response.data or b"{}")
        except ValueError:  # e.g. "404 page not found" for an API group that is not installed
            data = {"message": response.data[:500].decode(errors="replace")}
        if not 200 <= response.status < 300:
            causes = tuple(c.get("reason", "") for c in data.get("details", {}).get("causes", []))
            raise ApiError(
                response.status,
                data.get("reason", ""),
                data.get("message", response.data[:500]),
                causes,
            )
        return data

    def served(self, kind: Kind) -> bool:
        """Whether the API server serves `kind` (its CRD is installed), as discovery said at
        most DISCOVERY_SECONDS ago."""
        now = self._monotonic()
        asked = self._served.get(kind)
        if asked is not None and now - asked[0] < DISCOVERY_SECONDS:
            return asked[1]
        prefix = "/api" if kind.api_version == "v1" else "/apis"
        try:
            found = self._request("GET", f"{prefix}/{kind.api_version}", "APIResourceList")
            answer = any(r.get("name") == kind.plural for r in found.get("resources", []))
        except ApiError as error:
            if error.status != 404:  # 404: the group or version is not served at all
                raise
            answer = False
        self._served[kind] = (now, answer)
        return answer

    def get(self, ref: Ref) -> dict[str, Any] | None:
        try:
            return self._request("GET", _path(ref), ref.kind)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def list(self, kind: Kind, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The objects of `kind` in `namespace` that match the label `selector`."""
        query = [("labelSelector", selector)]
        found = self._request("GET", _collection(kind, namespace), kind.kind, query=query)
        return list(found.get("items") or [])

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply as Herd's field manager, taking back fields others changed."""
        ref = Ref.of(obj)
        return self._request(
            "PATCH",
            _path(ref),
            ref.kind,
            body=obj,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def delete(self, ref: Ref) -> bool:
        try:
            self._request("DELETE", _path(ref), ref.kind, body={"propagationPolicy": "Background"})
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    def apply_status(
        self, namespace: str, name: str, status: dict[str, Any], manager: str = FIELD_MANAGER
    ) -> None:
        """Server-side apply of (part of) the WebService status subresource: each writer owns
        its own fields under its own field manager."""
        ref = Ref(kinds.WEBSERVICE.kind, namespace, name)
        body = {
            **kinds.WEBSERVICE.type_meta(),
            "metadata": {"name": name, "namespace": namespace},
            "status": status,
        }
        self._request(
            "PATCH",
            _path(ref, "status"),
            ref.kind,
            body=body,
            query=[("fieldManager", manager), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def remove_fields(
        self, ref: Ref, pointers: list[str], subresource: str | None = None
    ) -> dict[str, Any]:
        """Remove fields (JSON pointers, in order) that other managers set: server-side apply
        never removes another manager's fields, a JSON patch does. The object as it is now."""
        return self._request(
            "PATCH",
            _path(ref, subresource),
            ref.kind,
            body=[{"op": "remove", "path": p} for p in pointers],
            content_type="application/json-patch+json",
        )

    def scale(self, namespace: str, name: str, replicas: int, manager: str) -> None:
        """Set a WebService's replicas through its scale subresource, as `kubectl scale` does."""
        ref = Ref(kinds.WEBSERVICE.kind, namespace, name)
        self._request(
            "PATCH",
            _path(ref, "scale"),
            ref.kind,
            body={"spec": {"replicas": replicas}},
            query=[("fieldManager", manager)],
            content_type="application/merge-patch+json",
        )

    # --- For the leader election (herd.leadership): a Lease, with optimistic concurrency. ---

    def get_lease(self, namespace: str, name: str, timeout: float) -> dict[str, Any] | None:
        try:
            return self._request(
                "GET",
                f"{_collection(kinds.LEASE, namespace)}/{name}",
                kinds.LEASE.kind,
                timeout=timeout,
            )
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def create_lease(
        self, namespace: str, name: str, spec: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """409 AlreadyExists when another replica created it first."""
        body = {**kinds.LEASE.type_meta(), "metadata": {"name": name}, "spec": spec}
        return self._request(
            "POST",
            _collection(kinds.LEASE, namespace),
            kinds.LEASE.kind,
            body=body,
            timeout=timeout,
        )

    def update_lease(
        self, namespace: str, name: str, resource_version: str, spec: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        """A replace at `resource_version`: 409 Conflict when another replica wrote it since."""
        body = {
            **kinds.LEASE.type_meta(),
            "metadata": {"name": name, "resourceVersion": resource_version},
            "spec": spec,
        }
        path = f"{_collection(kinds.LEASE, namespace)}/{name}"
        return self._request("PUT", path, kinds.LEASE.kind, body=body, timeout=timeout)

    # --- For the `herd` CLI: a user's kubeconfig, WebService reads, rollout intents. ---

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> Kube:
        """A client for one kubeconfig context (default: $KUBECONFIG, else ~/.kube/config, and
        its current context), without touching the kubernetes package's global default."""
        configuration = Configuration()
        kubernetes.config.load_kube_config(
            config_file=kubeconfig_path(path), context=context, client_configuration=configuration
        )
        return cls(ApiClient(configuration))

    def _webservice_request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """`_request` on WebServices, where urllib3's connection errors (connection refused,
        unknown host: not OSErrors) are an ApiError too, so a user gets one line, not a trace."""
        try:
            return self._request(method, path, kinds.WEBSERVICE.kind, **kwargs)
        except urllib3.exceptions.HTTPError as error:
            raise ApiError(0, "Unreachable", str(error)) from error

    @property
    def server(self) -> str:
        """The API server's URL, for messages (never the credentials)."""
        return str(self.client.configuration.host)

    def get_webservice(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._webservice_request(
                "GET", _path(Ref(kinds.WEBSERVICE.kind, namespace, name))
            )
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def list_webservices(self, namespace: str | None) -> list[dict[str, Any]]:
        """The WebServices of a namespace, or of all namespaces when `namespace` is None."""
        return self._webservice_request("GET", _webservices_path(namespace))["items"]

    def watch_webservices(
        self, namespace: str | None, resource_version: str | None, timeout_seconds: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, WebService) for each change after `resource_version` until the server ends
        the watch (`timeout_seconds`); with None, first an ADDED for every WebService there is,
        as a list would give. BOOKMARKs carry only a newer resourceVersion. An expired version
        raises ApiError 410: list again."""
        query = [("watch", "true"), ("allowWatchBookmarks", "true")]
        query.append(("timeoutSeconds", str(timeout_seconds)))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        API_REQUESTS.labels("WATCH", kinds.WEBSERVICE.kind).inc()
        request = self.client.param_serialize(
            "GET",
            _webservices_path(namespace),
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            # The read timeout outlasts the server's own end of the watch.
            response = self.client.call_api(*request, _request_timeout=(10, timeout_seconds + 10))
            stream = response.response
            try:
                if stream.status != 200:
                    data = json.loads(stream.read() or b"{}")
                    raise ApiError(stream.status, data.get("reason", ""), data.get("message", ""))
                # Chunk by chunk as the server sends them, as the kubernetes client's own watch.
                yield from _watch_events(stream.stream(amt=None, decode_content=True))
            finally:
                stream.release_conn()  # also when the caller stops reading early
        except ApiException as error:
            raise ApiError(error.status or 0, error.reason or "", str(error)) from error
        except (OSError, urllib3.exceptions.HTTPError) as error:
            raise ApiError(0, "Unreachable", str(error)) from error
        except ValueError as error:  # not JSON: no API server answers so
            raise ApiError(0, "Unreadable", f"the watch answered no JSON: {error}") from error

    def can_i(
        self, verb: str, resource: str, subresource: str, namespace: str, name: str
    ) -> tuple[bool, str]:
        """Whether this identity may `verb` the resource (a SelfSubjectAccessReview, as
        `kubectl auth can-i` asks), and the authorizer's reason."""
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "group": kinds.WEBSERVICE.group,
                    "resource": resource,
                    "subresource": subresource,
                    "verb": verb,
                    "namespace": namespace,
                    "name": name,
                }
            },
        }
        review = self._request(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            body=body,
        )
        status = review.get("status", {})
        return bool(status.get("allowed")), status.get("reason", "")

    def list_events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The Events about one WebService (the operator's and the canary controller's)."""
        selector = f"involvedObject.kind={kinds.WEBSERVICE.kind},involvedObject.name={name}"
        return self._request(
            "GET",
            f"/api/v1/namespaces/{namespace}/events",
            "Event",
            query=[("fieldSelector", selector)],
        )["items"]

    def write_intent(self, namespace: str, name: str, intent: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of `status.intent` as the CLI's field manager; returns the WebService
        as stored. The status subresource, not the spec: GitOps tools see no drift (Argo Rollouts
        promotes the same way), and the herd-promoter role needs no right to edit the spec."""
        body = {
            **kinds.WEBSERVICE.type_meta(),
            "metadata": {"name": name, "namespace": namespace},
            "status": {"intent": intent},
        }
        return self._webservice_request(
            "PATCH",
            _path(Ref(kinds.WEBSERVICE.kind, namespace, name), "status"),
            body=body,
            query=[("fieldManager", CLI_FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def proxy_get(self, url: str, fields: dict[str, str], timeout: float) -> tuple[int, bytes]:
        """GET an in-cluster Service URL through the API server's service proxy, as this
        identity (needs get on services/proxy there): the status and body of its answer,
        whatever the status. ApiError 0 when no answer came."""
        API_REQUESTS.labels("GET", "Service").inc()
        request = self.client.param_serialize(
            "GET",
            service_proxy_path(url),
            query_params=list(fields.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(*request, _request_timeout=timeout)
            response.read()
        except (OSError, urllib3.exceptions.HTTPError) as error:
            raise ApiError(0, "Unreachable", type(error).__name__) from error
        return response.status, response.data or b""


CLI_FIELD_MANAGER = "herd-cli"


def service_proxy_path(url: str) -> str:
    """The API server's proxy path for an in-cluster URL: `http://NAME.NS.svc:PORT/a/b` is
    `/api/v1/namespaces/NS/services/NAME:PORT/proxy/a/b` (`https:NAME:PORT` for https)."""
    service = in_cluster_service(url)
    if service is None:
        raise ValueError(f"{redacted(url)} names no in-cluster Service (NAME.NAMESPACE.svc)")
    scheme = "https:" if service.scheme == "https" else ""
    where = f"{quote(service.namespace, safe='')}/services/{scheme}{service.name}:{service.port}"
    return f"/api/v1/namespaces/{where}/proxy{service.path}"


def _webservices_path(namespace: str | None) -> str:
    scope = f"/namespaces/{namespace}" if namespace else ""
    return f"/apis/{kinds.WEBSERVICE.api_version}{scope}/{kinds.WEBSERVICE.plural}"


def _watch_events(chunks: Iterator[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
    """A watch's newline-delimited JSON events, however the chunks split them; an ERROR event
    (a Status: 410 Gone for an expired resourceVersion) is raised."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            event = json.loads(line)
            if event["type"] == "ERROR":
                status = event.get("object", {})
                raise ApiError(
                    status.get("code", 500), status.get("reason", ""), status.get("message", "")
                )
            yield event["type"], event["object"]


def kubeconfig_path(path: str | None) -> str:
    """The kubeconfig kubectl would read: --kubeconfig, else $KUBECONFIG (read now, not when the
    kubernetes package was imported), else ~/.kube/config."""
    return path or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


def context_namespace(path: str | None = None, context: str | None = None) -> str:
    """The namespace of a kubeconfig context (default: the current one), else "default"."""
    contexts, current = kubernetes.config.list_kube_config_contexts(kubeconfig_path(path))
    if context is not None:
        current = next((c for c in contexts if c["name"] == context), None)
        if current is None:
            raise kubernetes.config.ConfigException(f"context {context!r} is not in the kubeconfig")
    return current.get("context", {}).get("namespace") or "default"
