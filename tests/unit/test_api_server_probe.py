"""No API server to talk to: the operator says why in one line and exits, instead of kopf
retrying its startup every minute with a traceback. The decisions (which failures are worth a
retry, what the line says) without a network; the credential loading with the real client."""

from __future__ import annotations

import logging
import socket
import ssl

import pytest
import urllib3
from kubernetes import config
from kubernetes.client.exceptions import ApiException
from modelyard import __main__ as entrypoint
from modelyard import kube

SERVER = "https://10.96.0.1:443"


def refused() -> BaseException:
    """What the client raises for a port nobody listens on: a real urllib3 failure (a bound
    socket that does not listen refuses connections)."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        with pytest.raises(urllib3.exceptions.MaxRetryError) as raised:
            urllib3.PoolManager(retries=0).request("GET", f"http://127.0.0.1:{port}/version")
    return raised.value


def untrusted_certificate() -> BaseException:
    try:
        try:
            raise ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed")
        except ssl.SSLError as error:
            raise urllib3.exceptions.SSLError(error) from error
    except urllib3.exceptions.SSLError as error:
        return urllib3.exceptions.MaxRetryError(None, "/version", error)


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (None, "reached"),
        (ApiException(status=403, reason="Forbidden"), "reached"),  # there; RBAC's business
        (ApiException(status=404, reason="Not Found"), "reached"),
        (ApiException(status=401, reason="Unauthorized"), "fatal"),
        (ApiException(status=503, reason="Service Unavailable"), "retry"),  # still starting
        (ApiException(status=429, reason="Too Many Requests"), "retry"),
        (TimeoutError("timed out"), "retry"),
    ],
    ids=str,
)
def test_verdicts(error: BaseException | None, verdict: str) -> None:
    assert kube.probe_verdict(error) == verdict


def test_a_refused_connection_is_retried_and_named() -> None:
    error = refused()
    assert kube.probe_verdict(error) == "retry"
    message = kube.unreachable_message(SERVER, error)
    assert message.startswith(f"cannot reach the Kubernetes API server at {SERVER}: ")
    assert message.endswith("Connection refused"), message
    assert "\n" not in message


def test_an_untrusted_certificate_is_not_retried() -> None:
    error = untrusted_certificate()
    assert kube.probe_verdict(error) == "fatal"
    assert "certificate verify failed" in kube.unreachable_message(SERVER, error)


def test_refused_credentials_are_named() -> None:
    error = ApiException(status=401, reason="Unauthorized")
    assert kube.unreachable_message(SERVER, error) == (
        f"cannot reach the Kubernetes API server at {SERVER}: 401 Unauthorized "
        "(the server refused the credentials)"
    )


def test_a_bug_is_not_taken_for_a_network_failure() -> None:
    with pytest.raises(KeyError):
        kube.probe_verdict(KeyError("host"))


class Probe:
    def __init__(self, *outcomes: BaseException | None) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.slept: list[float] = []

    def __call__(self) -> None:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome


def test_bounded_retries_then_one_reason() -> None:
    probe = Probe(refused(), refused(), refused(), None)
    with pytest.raises(kube.Unreachable, match="Connection refused"):
        kube.probe_until_reached(probe, SERVER, delays=(1.0, 2.0), sleep=probe.slept.append)
    assert probe.calls == 3 and probe.slept == [1.0, 2.0]


def test_a_server_that_comes_up_within_the_retries_is_reached() -> None:
    probe = Probe(refused(), None)
    kube.probe_until_reached(probe, SERVER, delays=(1.0, 2.0), sleep=probe.slept.append)
    assert probe.calls == 2 and probe.slept == [1.0]


def test_refused_credentials_are_not_retried() -> None:
    probe = Probe(ApiException(status=401, reason="Unauthorized"))
    with pytest.raises(kube.Unreachable, match="401 Unauthorized"):
        kube.probe_until_reached(probe, SERVER, delays=(1.0, 2.0), sleep=probe.slept.append)
    assert probe.calls == 1 and probe.slept == []


def test_the_default_retries_take_seconds_not_minutes() -> None:
    assert sum(kube.PROBE_DELAYS) + (len(kube.PROBE_DELAYS) + 1) * sum(kube.PROBE_TIMEOUT) < 30


def test_no_credentials_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real client's loaders: not in a pod, and KUBECONFIG names no file."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")
    with pytest.raises(kube.NoCredentials) as raised:
        kube.load_client()
    assert isinstance(raised.value, config.ConfigException)  # what callers caught before
    message = str(raised.value)
    assert "there is neither a service-account token" in message
    assert "nor a usable kubeconfig (KUBECONFIG=/nonexistent: " in message


def test_the_default_kubeconfig_is_named_when_kubeconfig_is_unset() -> None:
    message = kube.no_credentials_message("Service host/port is not set.", None, "No config")
    assert "(~/.kube/config: No config)" in message


def test_main_logs_one_line_and_exits(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unreachable() -> None:
        raise kube.Unreachable(kube.unreachable_message(SERVER, refused()))

    def kopf_run(**_: object) -> None:
        raise AssertionError("kopf must not start without an API server")

    monkeypatch.setattr(kube, "check_api_server", unreachable)
    monkeypatch.setattr(entrypoint.kopf, "run", kopf_run)
    monkeypatch.setattr(entrypoint.logs, "configure", lambda *_: None)
    with caplog.at_level(logging.INFO), pytest.raises(SystemExit) as exited:
        entrypoint.main()
    assert exited.value.code == entrypoint.EXIT_NO_API_SERVER != 0
    assert [(r.levelno, r.getMessage().split(": ")[0]) for r in caplog.records] == [
        (logging.CRITICAL, "modelyard-operator")
    ]
    assert caplog.records[0].exc_info is None  # no traceback
