"""The only module that talks to the API server: get, list, server-side apply, status patch,
delete, events. Built on the official client's ``DynamicClient`` (one code path for every kind,
plain dicts in and out)."""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import uuid
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

from modelyard import FIELD_MANAGER
from modelyard.conditions import now

log = logging.getLogger(__name__)

MERGE = "application/merge-patch+json"
# (connect, read) seconds for every call: a half-open connection must not hold an object's
# reconcile lock (and the resync behind it) forever. The client has no default.
REQUEST_TIMEOUT: tuple[float, float] = (5.0, 10.0)


def load_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the local kubeconfig."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def namespace_terminating(error: Exception) -> bool:
    """The API server refused a create because the namespace is being deleted: nothing to do
    (the namespace takes our objects and their children with it)."""
    status = getattr(error, "status", None)
    body = str(getattr(error, "body", "") or "")
    return status == 403 and "NamespaceTerminating" in body


def rejection(error: ApiException) -> tuple[str, str]:
    """The API server's own ``reason`` and ``message`` for a refused request (its Status
    body), e.g. ``("Invalid", 'Service "2024-iris" is invalid: metadata.name: ...')``."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        body = {}
    reason = str(body.get("reason") or error.reason or f"HTTP{error.status}")
    message = str(body.get("message") or error.reason or "")
    return reason, message


def user_caused(error: Exception) -> bool:
    """A 4xx the request itself earned (invalid, forbidden, quota, admission): retrying the
    same request gives the same answer until someone changes the spec or the cluster. A 5xx,
    a timeout or a 429 is the cluster's, and a later reconcile retries it."""
    status = getattr(error, "status", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (404, 408, 429)


def _plain(obj: Any) -> dict[str, Any]:
    data = obj.to_dict() if hasattr(obj, "to_dict") else obj
    return dict(data) if data else {}


class Kube:
    """Thin, synchronous wrapper; every method is safe to call again with the same input."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.dynamic = DynamicClient(api_client)  # type: ignore[no-untyped-call]

    def _resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = self._resource(api_version, kind).get(
                name=name, namespace=namespace, _request_timeout=REQUEST_TIMEOUT
            )
        except NotFoundError:
            return None
        return _plain(found)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        found = self._resource(api_version, kind).get(
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            _request_timeout=REQUEST_TIMEOUT,
        )
        return [dict(item) for item in (_plain(found).get("items") or [])]

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply as field manager ``modelyard``, forcing ownership of our fields:
        the same manifest twice is a no-op, a missing object is created."""
        meta = manifest["metadata"]
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        applied = resource.server_side_apply(
            body=manifest,
            name=meta["name"],
            namespace=meta.get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
            _request_timeout=REQUEST_TIMEOUT,
        )
        return _plain(applied)

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create; an existing object of that name raises ``ConflictError``."""
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        created = resource.create(
            body=manifest,
            namespace=manifest["metadata"].get("namespace"),
            _request_timeout=REQUEST_TIMEOUT,
        )
        return _plain(created)

    def replace(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Replace, guarded by ``metadata.resourceVersion``: a concurrent writer makes this
        raise ``ConflictError`` instead of being overwritten."""
        meta = manifest["metadata"]
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        replaced = resource.replace(
            body=manifest,
            name=meta["name"],
            namespace=meta.get("namespace"),
            _request_timeout=REQUEST_TIMEOUT,
        )
        return _plain(replaced)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete (children first go in the background); already gone is success."""
        with contextlib.suppress(NotFoundError):
            self._resource(api_version, kind).delete(
                name=name,
                namespace=namespace,
                propagation_policy="Background",
                _request_timeout=REQUEST_TIMEOUT,
            )

    def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> None:
        """A merge patch on the status subresource (never touches ``spec``)."""
        resource = self._resource(api_version, kind)
        try:
            # Our own field manager (not the client's user agent), so managedFields tell a
            # GitOps tool exactly which fields the operator owns: status, nothing else.
            resource.status.patch(
                body={"status": patch},
                name=name,
                namespace=namespace,
                content_type=MERGE,
                field_manager=FIELD_MANAGER,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except NotFoundError:
            log.debug("%s %s/%s is gone; status not written", kind, namespace, name)

    def pod_proxy_get(
        self, namespace: str, pod: str, port: int, path: str, query: dict[str, str] | None = None
    ) -> Any:
        """GET ``path`` on a pod's ``port`` through the API server's pod proxy (RBAC:
        ``pods/proxy`` get): no network path beyond the one to the API server. Returns the
        decoded JSON; raises ``ApiException`` (the pod's own 4xx/5xx, or the proxy's)."""
        return json.loads(self._pod_proxy(namespace, pod, port, path, query, "application/json"))

    def pod_proxy_text(self, namespace: str, pod: str, port: int, path: str) -> str:
        """Like ``pod_proxy_get``, for a text answer (a Prometheus ``/metrics`` page)."""
        return self._pod_proxy(namespace, pod, port, path, None, "text/plain").decode()

    def _pod_proxy(
        self,
        namespace: str,
        pod: str,
        port: int,
        path: str,
        query: dict[str, str] | None,
        accept: str,
    ) -> bytes:
        api = self.dynamic.client
        request = api.param_serialize(
            method="GET",
            resource_path=f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/{path.lstrip('/')}",
            query_params=list((query or {}).items()),
            header_params={"Accept": accept},
            auth_settings=["BearerToken"],
        )
        response = api.call_api(*request, _request_timeout=REQUEST_TIMEOUT)
        response.read()
        if response.status >= 400:
            raise ApiException(status=response.status, reason=response.reason)
        return bytes(response.data)

    def events_about(self, namespace: str, kind: str, name: str) -> builtins.list[dict[str, Any]]:
        """The core/v1 Events whose involved object is ``kind``/``name``."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        return self.list("v1", "Event", namespace, field_selector=selector)

    def event(
        self,
        involved: dict[str, Any],
        *,
        reason: str,
        message: str,
        warning: bool = False,
    ) -> None:
        """A core/v1 Event about ``involved`` (best effort: an event is never worth a retry)."""
        meta = involved.get("metadata") or {}
        stamp = now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name')}.{uuid.uuid4().hex[:16]}",
                "namespace": meta.get("namespace"),
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": os.environ.get("HOSTNAME", FIELD_MANAGER),
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self._resource("v1", "Event").create(
                body=event, namespace=meta.get("namespace"), _request_timeout=REQUEST_TIMEOUT
            )
        except ConflictError:
            pass
        except Exception as error:
            if namespace_terminating(error):
                return
            log.warning("could not post event %s for %s", reason, meta.get("name"), exc_info=True)
