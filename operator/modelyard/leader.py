"""Leader election on a coordination.k8s.io/v1 Lease, so replicas run as hot standbys.

kopf's peering is not used: with equal priorities every instance freezes, and our periodic
resync is not a kopf handler, so peering would not pause it anyway. This follows client-go's
leaderelection: the holder renews ``spec.renewTime`` every ``renew_seconds``; a candidate takes
the Lease when the record it observed has not changed for ``lease_seconds`` by its *own* clock
(no comparison of clocks across machines); writes carry ``resourceVersion``, so two candidates
cannot both win. A leader that cannot renew within the lease steps down before anyone else
may take over.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger(__name__)

LEASE_API = "coordination.k8s.io/v1"


class LeaseStore(Protocol):
    def get(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None: ...

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]: ...

    def replace(self, manifest: dict[str, Any]) -> dict[str, Any]: ...


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LeaderElector:
    store: LeaseStore
    namespace: str
    name: str
    identity: str
    lease_seconds: int = 15
    renew_seconds: float = 5.0

    def __post_init__(self) -> None:
        self.leading = threading.Event()
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0

    def step(self) -> bool:
        """Acquire or renew once; returns whether this instance leads now."""
        try:
            won = self._try()
        except Exception:  # an API error is a failed renewal, never a crash of the loop
            log.warning("leader election: lease %s/%s not reachable", self.namespace, self.name)
            won = False
        now = time.monotonic()
        if won:
            self._renewed_at = now
            if not self.leading.is_set():
                log.info("leader election: %s leads (lease %s)", self.identity, self.name)
            self.leading.set()
        elif self.leading.is_set() and now - self._renewed_at >= self.lease_seconds * 2 / 3:
            # Step down well before the lease runs out for the others.
            log.warning("leader election: %s lost the lease", self.identity)
            self.leading.clear()
        return self.leading.is_set()

    def release(self) -> None:
        """On a clean shutdown: hand the lease over at once instead of after its duration."""
        if not self.leading.is_set():
            return
        self.leading.clear()
        try:
            lease = self.store.get(LEASE_API, "Lease", self.namespace, self.name)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = None
                lease["spec"]["leaseDurationSeconds"] = 1
                self.store.replace(lease)
        except Exception:
            log.warning("leader election: could not release lease %s", self.name)

    def _try(self) -> bool:
        lease = self.store.get(LEASE_API, "Lease", self.namespace, self.name)
        if lease is None:
            self.store.create(self._lease(None, transitions=0))
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        record = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"))
        now = time.monotonic()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        duration = int(spec.get("leaseDurationSeconds") or self.lease_seconds)
        expired = now - self._observed_at >= duration
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (holder != self.identity)
        self.store.replace(self._lease(lease, transitions=transitions))
        return True

    def _lease(self, current: dict[str, Any] | None, *, transitions: int) -> dict[str, Any]:
        spec = dict((current or {}).get("spec") or {})
        stamp = _stamp()
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = stamp
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=self.lease_seconds,
            renewTime=stamp,
            leaseTransitions=transitions,
        )
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if current is not None:
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        return {"apiVersion": LEASE_API, "kind": "Lease", "metadata": metadata, "spec": spec}
