"""``modelyard-train``: run one training from a TrainingSpec and report the result.

    modelyard-train [--spec FILE] [--output-dir DIR]

Configuration comes from the environment the operator sets (names in contract.py); the
flags override it for local runs. The result JSON is written to MODELYARD_RESULT_PATH
(default /dev/termination-log) on every exit path, and the exit code says whether a retry
can help (contract.ExitCode).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import tempfile
from types import FrameType

from pydantic import ValidationError

from modelyard_runtime.contract import (
    DEFAULT_DATA_ROOT,
    DEFAULT_RESULT_PATH,
    ENV_CHAMPION_DIR,
    ENV_CHAMPION_SHA256,
    ENV_DATA_ROOT,
    ENV_LOG_LEVEL,
    ENV_MODEL_VERSION,
    ENV_OUTPUT_DIR,
    ENV_RESULT_PATH,
    ENV_SIZE_LIMITS,
    ENV_SKIP_IF_DATA_UNCHANGED,
    ENV_STORAGE_URI,
    ENV_TRAINING_SPEC,
    ExitCode,
    TrainerResult,
    parse_pvc_uri,
)
from modelyard_runtime.logs import configure_logging
from modelyard_runtime.spec import SizeLimits, TrainingSpec, size_violations
from modelyard_runtime.train.artifact import generated_version
from modelyard_runtime.train.champion import Champion
from modelyard_runtime.train.errors import InvalidSpec, TrainerError
from modelyard_runtime.train.run import RunConfig, train

log = logging.getLogger("modelyard.train")

# A model version names one directory under the output dir (and a label value).
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
SHA256 = re.compile(r"[0-9a-f]{64}")


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse would exit 2 without a result; we report it as an invalid spec instead.
        raise _ArgumentError(message)


class _Terminated(Exception):
    pass


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(f"terminated by signal {signum}")


def write_result(result: TrainerResult, path: str) -> None:
    text = result.to_termination_message()
    try:
        with open(path, "w", encoding="utf-8") as stream:
            stream.write(text)
    except OSError as error:
        log.warning("cannot write the result", extra={"path": path, "error": str(error)})
    print(text, file=sys.stdout, flush=True)


def _load_spec(args: argparse.Namespace) -> TrainingSpec:
    if args.spec:
        try:
            with open(args.spec, encoding="utf-8") as stream:
                text = stream.read()
        except OSError as error:
            raise InvalidSpec(f"cannot read spec file {args.spec}: {error}") from error
    else:
        text = os.environ.get(ENV_TRAINING_SPEC, "")
        if not text.strip():
            raise InvalidSpec(f"no training spec: set {ENV_TRAINING_SPEC} or pass --spec FILE")
    try:
        json.loads(text)
    except ValueError as error:
        raise InvalidSpec(f"the training spec is not valid JSON: {error}") from error
    try:
        return TrainingSpec.model_validate_json(text)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in error.errors()
        )
        raise InvalidSpec(f"invalid training spec: {problems}") from error


def _check_sizes(spec: TrainingSpec) -> None:
    try:
        limits = SizeLimits.from_json(os.environ.get(ENV_SIZE_LIMITS))
    except ValueError as error:
        raise InvalidSpec(f"{ENV_SIZE_LIMITS}: {error}") from error
    problems = size_violations(spec, limits)
    if problems:
        raise InvalidSpec("; ".join(problems))


def _run_config(args: argparse.Namespace) -> RunConfig:
    """Where to write, checked now: a path that cannot be written is the spec's fault (no
    retry helps), and is better found before the training than after it."""
    storage_uri = os.environ.get(ENV_STORAGE_URI)
    field = "spec.output.storageUri" if storage_uri else "--output-dir"
    output_dir = args.output_dir or os.environ.get(ENV_OUTPUT_DIR)
    if not output_dir:
        raise InvalidSpec(f"no output directory: set {ENV_OUTPUT_DIR} or pass --output-dir")
    output_dir = os.path.abspath(output_dir)
    if storage_uri:
        try:
            parse_pvc_uri(storage_uri)
        except ValueError as error:
            raise InvalidSpec(f"{field}: {error}") from error
    version = os.environ.get(ENV_MODEL_VERSION) or generated_version()
    if not VERSION_PATTERN.fullmatch(version):
        raise InvalidSpec(f"{ENV_MODEL_VERSION}={version[:100]!r} is not one path segment")
    try:
        os.makedirs(output_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=output_dir):
            pass
    except OSError as error:
        raise InvalidSpec(f"{field}: cannot write {output_dir}: {error.strerror}") from error
    return RunConfig(
        output_dir=output_dir,
        storage_uri=storage_uri or f"file://{output_dir}",
        version=version,
        data_root=os.environ.get(ENV_DATA_ROOT, DEFAULT_DATA_ROOT),
        champion=_champion(),
        skip_if_data_unchanged=os.environ.get(ENV_SKIP_IF_DATA_UNCHANGED, "").lower() == "true",
    )


def _champion() -> Champion | None:
    directory = os.environ.get(ENV_CHAMPION_DIR, "")
    sha256 = os.environ.get(ENV_CHAMPION_SHA256, "").lower()
    if not directory and not sha256:
        return None
    if not directory or not SHA256.fullmatch(sha256):
        raise InvalidSpec(
            f"a champion needs both {ENV_CHAMPION_DIR} and {ENV_CHAMPION_SHA256} "
            "(its artifact digest, 64 hex digits): it is verified before it is loaded"
        )
    return Champion(directory=directory, sha256=sha256)


def main(argv: list[str] | None = None) -> int:
    configure_logging(os.environ.get(ENV_LOG_LEVEL, "INFO"))
    result_path = os.environ.get(ENV_RESULT_PATH, DEFAULT_RESULT_PATH)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        parser = _Parser(prog="modelyard-train", description=__doc__.splitlines()[0])
        parser.add_argument(
            "--spec", help=f"TrainingSpec JSON file (default: ${ENV_TRAINING_SPEC})"
        )
        parser.add_argument(
            "--output-dir", help=f"where <version>/ is written (default: ${ENV_OUTPUT_DIR})"
        )
        args = parser.parse_args(argv)
        spec = _load_spec(args)
        _check_sizes(spec)
        config = _run_config(args)
        log.info(
            "training",
            extra={
                "estimator": spec.model.estimator,
                "version": config.version,
                "outputDir": config.output_dir,
            },
        )
        result = train(spec, config)
        code = ExitCode.GATE_NOT_MET if result.reason == "GateNotMet" else ExitCode.OK
        log.info("finished", extra={"reason": result.reason, "exitCode": int(code)})
    except _ArgumentError as error:
        log.error("invalid arguments", extra={"error": str(error)})
        result = TrainerResult(reason="InvalidSpec", message=str(error))
        code = ExitCode.INVALID_SPEC
    except TrainerError as error:
        log.error("training failed", extra={"reason": error.reason, "error": error.message})
        result, code = TrainerResult(reason=error.reason, message=error.message), error.exit_code
    except (Exception, _Terminated, KeyboardInterrupt) as error:
        log.exception("training crashed")
        result = TrainerResult(reason="InternalError", message=f"{type(error).__name__}: {error}")
        code = ExitCode.INTERNAL_ERROR
    write_result(result, result_path)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
