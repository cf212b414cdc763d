"""`mlops serve --local [--version N] [--port P]`: serve a registered model version on 127.0.0.1, with data capture.

The version comes from the local registry under the state dir (default: the newest Approved one); its model and
inference code are loaded as the scikit-learn container loads them (mlops/endpoint.py). Requests are captured in
SageMaker's format and layout into the local artifacts bucket (mlops/capture.py). Ctrl-C or SIGTERM stops the server
after the requests in flight are answered and captured; the exit code is then 0.
"""

from __future__ import annotations

import argparse
import errno
import json
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

from config import EnvironmentConfig
from mlops.capture import CAPTURE_PREFIX, VARIANT, CaptureWriter
from mlops.common import UsageError, shown
from mlops.endpoint import LocalEndpoint, endpoint_name, load_package
from mlops.local import read_assembly
from pipeline_defs.contract import ApprovalStatus, DeployTimeValue
from pipeline_defs.local import LocalModelRegistry, LocalS3, local_values


class _Stop(Exception):
    """Raised in the main thread by SIGINT/SIGTERM: leaves serve_forever."""


def command_serve(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if not args.local:
        raise UsageError(
            "mlops serve runs the endpoint on this machine: pass --local (the deployed endpoint is the Serving "
            "stack's; call it with mlops invoke --env)"
        )
    if not 0 <= args.sampling_percentage <= 100:
        raise UsageError(f"--sampling-percentage {args.sampling_percentage}: use 0..100 (0 captures nothing)")
    state_dir: Path = args.state_dir
    group = config.model_package_group_name
    package = choose_package(LocalModelRegistry(state_dir / "registry", config.region), group, args.version, state_dir)
    assembly = read_assembly(args.assembly, config)
    s3 = LocalS3(state_dir / "s3", assembly.assets)
    name = endpoint_name(config)
    capture_uri = (
        f"s3://{local_values(config.region)[DeployTimeValue.ARTIFACTS_BUCKET]}/{CAPTURE_PREFIX}/{name}/{VARIANT}/"
    )
    capture_folder = s3.path(capture_uri)
    capture = CaptureWriter(capture_folder, args.sampling_percentage) if args.sampling_percentage else None
    with tempfile.TemporaryDirectory(prefix="mlops-serve-") as work:
        code = load_package(package, s3, Path(work))
        server = _bind(code, name, args.port, capture)
        started = {
            "url": server.url,
            "endpoint": name,
            "variant": VARIANT,
            "model_package_arn": package["ModelPackageArn"],
            "version": package["ModelPackageVersion"],
            "capture_uri": capture_uri,
            "capture_folder": str(capture_folder),
            "sampling_percentage": args.sampling_percentage,
        }
        print(json.dumps(started) if args.json else _started_line(started), flush=True)
        signal_name = serve_until_stopped(server)
    written = capture.written if capture else 0
    print(f"stopped ({signal_name}): {written} request(s) captured", file=sys.stderr, flush=True)
    return 0


def choose_package(registry: LocalModelRegistry, group: str, version: int | None, state_dir: Path) -> dict[str, Any]:
    """The version asked for, else the newest Approved one; one clear line when there is none."""
    if version is not None:
        package = registry.describe(group, version)
        status = package.get("ModelApprovalStatus")
        if status != ApprovalStatus.APPROVED.value:
            print(f"warning: {group} version {version} is {status}, not Approved", file=sys.stderr, flush=True)
        return package
    latest = registry.latest(group, ApprovalStatus.APPROVED.value)
    if latest is None:
        known = len(registry.versions(group))
        raise UsageError(
            f"no Approved version of {group} in {shown(state_dir / 'registry')} ({known} version(s) in all): "
            "approve one (mlops registry approve), pass --version N, or point --state-dir at the demo's (.local/demo)"
        )
    return latest


def serve_until_stopped(server: LocalEndpoint) -> str:
    """Serve until SIGINT or SIGTERM, then stop cleanly; returns the signal's name."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop(signal.Signals(signum).name)

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, stop) for number in signals}
    received = "stopped"
    try:
        server.serve_forever()
    except _Stop as caught:
        received = str(caught)
    finally:
        for number in signals:  # a second Ctrl-C must not interrupt the flush
            signal.signal(number, signal.SIG_IGN)
        server.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    return received


def _bind(code: Any, name: str, port: int, capture: CaptureWriter | None) -> LocalEndpoint:
    try:
        return LocalEndpoint(code, name, port=port, capture=capture)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} is in use: pick another --port (0 picks a free one)") from None
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}") from None


def _started_line(started: dict[str, Any]) -> str:
    capture = (
        f"data capture {started['sampling_percentage']}% -> {shown(started['capture_folder'])}"
        if started["sampling_percentage"]
        else "data capture off"
    )
    return (
        f"Serving version {started['version']} as {started['endpoint']}/{started['variant']} on {started['url']} "
        f"(POST /invocations or /endpoints/{started['endpoint']}/invocations); {capture}; Ctrl-C stops"
    )
