"""The operator image, built and run for real: non-root, read-only with every capability
dropped (a tmpfs /tmp, as the Deployment's emptyDir), and with no API server to talk to it
exits within seconds saying why in one line; what it installed is exactly
operator/requirements.txt, consistent, and no scikit-learn."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from image_support import REPO, docker, installed_versions, locked_versions
from modelyard.__main__ import EXIT_NO_API_SERVER

pytestmark = pytest.mark.image

# The Deployment's securityContext (manifests/operator.yaml) as docker flags: no --user, the
# image's own USER must be the non-root one.
HARDENED = [
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--network",
    "none",
]
EXIT_WITHIN_SECONDS = 30
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def run_without_api_server(image: str, *flags: str) -> tuple[int, list[str], float]:
    started = time.monotonic()
    done = docker(
        "run", "--rm", *HARDENED, *flags, image, check=False, timeout=EXIT_WITHIN_SECONDS + 30
    )
    elapsed = time.monotonic() - started
    return done.returncode, (done.stderr + done.stdout).strip().splitlines(), elapsed


def the_one_line(lines: list[str]) -> str:
    """The operator's logs are JSON lines (MODELYARD_LOG_FORMAT's default): exactly one, at
    CRITICAL, and no traceback."""
    assert len(lines) == 1, "\n".join(lines)
    entry = json.loads(lines[0])
    assert entry["level"] == "critical" and "exception" not in entry, entry
    message: str = entry["message"]
    return message


def test_runs_as_uid_10001(operator_image: str) -> None:
    user = docker("image", "inspect", "-f", "{{.Config.User}}", operator_image).stdout.strip()
    assert user == "10001:10001"  # numeric: the kubelet can check runAsNonRoot
    ids = docker("run", "--rm", *HARDENED, "--entrypoint", "id", operator_image).stdout
    assert ids.split()[:2] == ["uid=10001(modelyard)", "gid=10001(modelyard)"], ids


def test_no_credentials_one_line_and_exit(operator_image: str) -> None:
    code, lines, elapsed = run_without_api_server(operator_image)
    assert code == EXIT_NO_API_SERVER, lines
    assert elapsed < EXIT_WITHIN_SECONDS
    assert the_one_line(lines).startswith(
        "modelyard-operator: cannot reach a Kubernetes API server: there is neither a "
        "service-account token (in-cluster: Service host/port is not set.) nor a usable "
        "kubeconfig (~/.kube/config: "
    )


def test_in_cluster_api_server_refusing_one_line_and_exit(
    operator_image: str, tmp_path: Path
) -> None:
    """As in a pod: a service-account token mounted, KUBERNETES_SERVICE_* set, but nothing
    listens there."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("not-a-real-token")
    (account / "namespace").write_text("modelyard-system")
    (account / "ca.crt").write_bytes(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes())
    for path in (account, *account.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    code, lines, elapsed = run_without_api_server(
        operator_image,
        "-v", f"{account}:{SERVICE_ACCOUNT}:ro",
        "-e", "KUBERNETES_SERVICE_HOST=127.0.0.1",
        "-e", "KUBERNETES_SERVICE_PORT=1",
    )  # fmt: skip
    assert code == EXIT_NO_API_SERVER, lines
    assert elapsed < EXIT_WITHIN_SECONDS
    assert the_one_line(lines) == (
        "modelyard-operator: cannot reach the Kubernetes API server at https://127.0.0.1:1: "
        "[Errno 111] Connection refused"
    )


def test_pip_check_inside(operator_image: str) -> None:
    """The image ships no installer (dropped at build time): the dev venv's pip, mounted
    read-only, checks the image's own site-packages."""
    import pip

    checker = Path(pip.__file__).parent
    done = docker(
        "run", "--rm", *HARDENED,
        "-v", f"{checker}:/checker/pip:ro", "-e", "PYTHONPATH=/checker",
        "-e", "PIP_DISABLE_PIP_VERSION_CHECK=1",
        "--entrypoint", "python3", operator_image, "-m", "pip", "check",
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No broken requirements found." in done.stdout
    bare = docker(
        "run", "--rm", "--entrypoint", "python3", operator_image, "-m", "pip", check=False
    )
    assert bare.returncode != 0 and "No module named pip" in bare.stderr


def test_image_runs_the_locked_versions(operator_image: str) -> None:
    """Exactly operator/requirements.txt plus the project's own package: no scikit-learn,
    no pandas, no installers."""
    installed = installed_versions(operator_image)
    assert installed.pop("modelyard") == "0.1.0"
    assert installed == locked_versions(REPO / "operator" / "requirements.txt")
    assert not {"scikit-learn", "pandas", "pip", "setuptools"} & installed.keys()
    done = docker(
        "run", "--rm", "--entrypoint", "python3", operator_image, "-c", "import sklearn",
        check=False,
    )  # fmt: skip
    assert "No module named 'sklearn'" in done.stderr


def test_the_entrypoint(operator_image: str) -> None:
    entrypoint = docker("image", "inspect", "-f", "{{json .Config.Entrypoint}}", operator_image)
    assert json.loads(entrypoint.stdout) == ["modelyard-operator"]
    scripts = docker(
        "run", "--rm", "--entrypoint", "ls", operator_image, "/opt/venv/bin"
    ).stdout.split()
    assert "modelyard-operator" in scripts
    # The runtime's entry points cannot run without scikit-learn: not shipped here.
    assert "modelyard-train" not in scripts and "modelyard-serve" not in scripts
