"""What went wrong in a pod, read from its status alone (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelyard_runtime.contract import ExitCode, ServerExitCode, TrainerResult
from pydantic import ValidationError

from modelyard.api import LastFailure

IMAGE_PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError"})
# Keyed by exit code; the trainer's and the server's codes do not overlap.
EXIT_CODE_REASONS: dict[int, str] = {
    ExitCode.INVALID_SPEC: "InvalidSpec",
    ExitCode.INVALID_DATA: "InvalidData",
    ExitCode.GATE_NOT_MET: "GateNotMet",
    ExitCode.INTERNAL_ERROR: "InternalError",
    ServerExitCode.MODEL_LOAD_FAILED: "ModelLoadFailed",
}
CRASH_REASONS = frozenset({"OOMKilled", "ModelLoadFailed"})
# Warning Events that explain a pod that never starts (or a Job that gets no pod): what the
# pod's own status does not say.
EVENT_REASONS = frozenset({"FailedCreate", "FailedMount", "FailedAttachVolume"})
MESSAGE_LIMIT = 512


def _short(text: str | None) -> str:
    text = (text or "").strip()
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def pod_name(pod: dict[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name", ""))


def created_at(pod: dict[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("creationTimestamp") or "")


def newest_first(pods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(pods, key=lambda p: (created_at(p), pod_name(p)), reverse=True)


def container_statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(
        status.get("containerStatuses") or []
    )


def terminated_failure(terminated: dict[str, Any], pod: str) -> LastFailure | None:
    """A container that ended badly: OOMKilled, or a non-zero exit code."""
    code = terminated.get("exitCode")
    if terminated.get("reason") == "OOMKilled":
        return LastFailure(
            reason="OOMKilled",
            exit_code=code if code is not None else 137,
            message=_short("the container ran out of memory; raise spec.resources.limits.memory"),
            pod=pod,
        )
    if code in (None, 0):
        return None
    reason = EXIT_CODE_REASONS.get(int(code), "Error")
    message = terminated.get("message") or terminated.get("reason") or f"exit code {code}"
    if message.lstrip().startswith("{"):
        try:  # the trainer's result: report its reason and words, not its JSON
            said = TrainerResult.from_termination_message(message)
            reason, message = said.reason, said.message or said.reason
        except ValidationError:
            pass
    return LastFailure(reason=reason, exit_code=int(code), message=_short(message), pod=pod)


def pod_failure(pod: dict[str, Any]) -> LastFailure | None:
    """The first thing wrong with ``pod``: it cannot be scheduled, its image cannot be pulled,
    it crash-loops, it was OOMKilled or it exited non-zero. ``None`` when nothing is."""
    name = pod_name(pod)
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            return LastFailure(
                reason="Unschedulable", message=_short(cond.get("message")), pod=name
            )
    for status in container_statuses(pod):
        state = status.get("state") or {}
        waiting = state.get("waiting") or {}
        reason = waiting.get("reason")
        if reason in IMAGE_PULL_REASONS or reason in CONFIG_REASONS:
            return LastFailure(reason=str(reason), message=_short(waiting.get("message")), pod=name)
        if reason == "CrashLoopBackOff":
            last = (status.get("lastState") or {}).get("terminated") or {}
            earlier = terminated_failure(last, name)
            # The crash's own reason says more than the loop, where it has one.
            specific = earlier is not None and earlier.reason in CRASH_REASONS
            return LastFailure(
                reason=earlier.reason if earlier is not None and specific else "CrashLoopBackOff",
                exit_code=earlier.exit_code if earlier else None,
                message=_short(
                    f"restarted {status.get('restartCount', 0)} times; "
                    + (earlier.message if earlier else waiting.get("message") or "")
                ),
                pod=name,
            )
        terminated = state.get("terminated")
        if terminated:
            found = terminated_failure(terminated, name)
            if found is not None:
                return found
    return None


def first_failure(pods: Iterable[dict[str, Any]]) -> LastFailure | None:
    """The newest pod's failure (the newest pod is the latest attempt)."""
    for pod in newest_first(pods):
        found = pod_failure(pod)
        if found is not None:
            return found
    return None


def termination_message(pod: dict[str, Any], container: str) -> str | None:
    """The message ``container`` left in ``/dev/termination-log``, if any."""
    for status in container_statuses(pod):
        if status.get("name") != container:
            continue
        for key in ("state", "lastState"):
            terminated = (status.get(key) or {}).get("terminated") or {}
            if terminated.get("message"):
                return str(terminated["message"])
    return None


def event_failure(events: Iterable[dict[str, Any]]) -> LastFailure | None:
    """The newest Warning Event that says why a pod cannot start (a volume that will not
    mount or attach) or why a Job or ReplicaSet gets no pod (quota, LimitRange, admission)."""
    warnings = [
        e for e in events if e.get("type") == "Warning" and e.get("reason") in EVENT_REASONS
    ]
    if not warnings:
        return None

    def stamp(event: dict[str, Any]) -> str:
        return str(
            event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
        )

    newest = max(warnings, key=stamp)
    involved = newest.get("involvedObject") or {}
    return LastFailure(
        reason=str(newest["reason"]),
        message=_short(newest.get("message")),
        pod=str(involved.get("name")) if involved.get("kind") == "Pod" else None,
    )


def waiting_to_start(pod: dict[str, Any]) -> bool:
    """Scheduled, but its containers have not started (e.g. volumes still mounting)."""
    status = pod.get("status") or {}
    if status.get("phase") != "Pending":
        return False
    scheduled = any(
        c.get("type") == "PodScheduled" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return scheduled and not any(
        (s.get("state") or {}).get("running") for s in container_statuses(pod)
    )
