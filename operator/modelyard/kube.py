"""The only module that talks to the API server: get, list, server-side apply, status patch,
delete, events. Built on the official client's ``DynamicClient`` (one code path for every kind,
plain dicts in and out)."""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal

import urllib3.exceptions
import yaml
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


class Unreachable(Exception):
    """No API server to talk to: no credentials, or the server does not answer. The message
    is the whole story (one log line, then the operator exits)."""


class NoCredentials(Unreachable, config.ConfigException):
    """Neither in-cluster credentials nor a usable kubeconfig."""


def load_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the local kubeconfig."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException as in_cluster:
        try:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError, ValueError, yaml.YAMLError) as kubeconfig:
            message = no_credentials_message(
                str(in_cluster), os.environ.get("KUBECONFIG"), str(kubeconfig)
            )
            raise NoCredentials(message) from kubeconfig
    return client.ApiClient()


def no_credentials_message(in_cluster: str, kubeconfig: str | None, kubeconfig_error: str) -> str:
    """Why neither way to find the API server worked, each in the client's own words."""
    where = f"KUBECONFIG={kubeconfig}" if kubeconfig else "~/.kube/config"
    return (
        "cannot reach a Kubernetes API server: there is neither a service-account token "
        f"(in-cluster: {in_cluster.strip()}) nor a usable kubeconfig ({where}: "
        f"{kubeconfig_error.strip()})"
    )


# Startup probe: GET /version with the loaded credentials, at most len(PROBE_DELAYS) + 1 times.
PROBE_DELAYS: tuple[float, ...] = (1.0, 2.0)
PROBE_TIMEOUT: tuple[float, float] = (3.0, 5.0)
Verdict = Literal["reached", "retry", "fatal"]


def probe_verdict(error: BaseException | None) -> Verdict:
    """What a failed (or not) startup probe means. Any answer but 401, 429 or a 5xx is a
    server that is there (a 403 on /version is RBAC's business, not reachability); a refused
    or timed-out connection may be a server still starting, so it is retried; a certificate
    the client cannot verify, or credentials the server refuses, stay wrong."""
    if error is None:
        return "reached"
    if isinstance(error, ApiException):
        status = error.status or 0
        if status == 401:
            return "fatal"
        return "retry" if status == 429 or status >= 500 else "reached"
    if any(isinstance(inner, ssl.SSLCertVerificationError) for inner in _chain(error)):
        return "fatal"
    if isinstance(error, urllib3.exceptions.HTTPError | OSError):
        return "retry"
    raise error  # not a network failure: a bug, let it show


def _chain(error: BaseException) -> list[BaseException]:
    """The error and those inside it, outermost first: urllib3 keeps the socket's error in
    ``MaxRetryError.reason`` and chains the rest (``raise ... from``)."""
    chain = [error]
    while len(chain) < 10:
        inner = (
            chain[-1].reason
            if isinstance(chain[-1], urllib3.exceptions.MaxRetryError)
            else chain[-1].__cause__ or chain[-1].__context__
        )
        if not isinstance(inner, BaseException) or inner in chain:
            break
        chain.append(inner)
    return chain


def unreachable_message(server: str, error: BaseException) -> str:
    """``cannot reach the Kubernetes API server at <server>: <reason>``, the reason in the
    fewest words that say it (``[Errno 111] Connection refused``, ``401 Unauthorized``)."""
    if isinstance(error, ApiException):
        reason = f"{error.status} {error.reason}".strip()
        if error.status == 401:
            reason += " (the server refused the credentials)"
    else:
        root = _chain(error)[-1]
        reason = str(root) or type(root).__name__
    return f"cannot reach the Kubernetes API server at {server}: {reason}"


def probe_until_reached(
    probe: Callable[[], object],
    server: str,
    delays: Sequence[float] = PROBE_DELAYS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Call ``probe`` until it reaches the server, at most ``len(delays) + 1`` times; raise
    ``Unreachable`` with the last reason when it never does."""
    for attempt in range(len(delays) + 1):
        try:
            probe()
        except Exception as error:
            verdict = probe_verdict(error)
            if verdict == "reached":
                return
            if verdict == "fatal" or attempt == len(delays):
                raise Unreachable(unreachable_message(server, error)) from error
            log.debug("API server probe failed (%s); retrying in %ss", error, delays[attempt])
            sleep(delays[attempt])
        else:
            return


def check_api_server() -> None:
    """Load the credentials the operator will use and prove an API server answers to them,
    within seconds: ``Unreachable`` otherwise. The probe has a client of its own with urllib3's
    retries off (each would log a warning line); the operator's client is untouched."""
    load_client().close()  # type: ignore[no-untyped-call]
    configuration = client.Configuration.get_default_copy()
    configuration.retries = 0
    with client.ApiClient(configuration) as api:
        version = client.VersionApi(api)
        probe_until_reached(
            lambda: version.get_code(_request_timeout=PROBE_TIMEOUT), configuration.host
        )


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
