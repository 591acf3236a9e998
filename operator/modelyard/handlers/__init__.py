"""kopf wiring. Importing this package registers every handler.

Why only ``@kopf.on.event`` (plus startup/cleanup)? kopf's change-detecting handlers
(``on.create``/``on.update``/``on.resume``/``on.field``/``on.delete``) keep a diff-base in a
``kopf.zalando.org/last-handled-configuration`` annotation and progress in more annotations, and
timers/daemons add a finalizer: all of it shows up as drift in a GitOps tool and blocks deletion
when the operator is gone. Our reconcile is level-triggered and idempotent, so it needs no diff:
each watch event (of the object or of a labelled child) simply calls one ``reconcile`` with the
object's namespace and name. Periodic resync and leader election are plain asyncio tasks started
at startup, not kopf timers. Result: kopf writes nothing to our objects — no annotations, no
finalizers, no status fields. ``tests/unit/test_handlers.py`` keeps it that way.

Shared state (the reconciler, the leader elector) lives in kopf's ``memo``
(``modelyard.handlers.lifecycle.State``).
"""

from modelyard.handlers import lifecycle, modeldeployments, trainingjobs

__all__ = ["lifecycle", "modeldeployments", "trainingjobs"]
