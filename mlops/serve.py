"""`mlops serve --local [--version N | --promoted] [--port P]`: serve a registered version on 127.0.0.1, with capture.

The version comes from the local registry under the state dir (default: the newest Approved one; `--promoted`: the one
`mlops promote --local` pinned in `<state dir>/deployments.json`, as the Serving stack serves its pin); its model and
inference code are loaded as the scikit-learn container loads them (mlops/endpoint.py). Requests are captured in
SageMaker's format and layout into the local artifacts bucket (mlops/capture.py); a capture folder that cannot be
written is refused at the start. Ctrl-C or SIGTERM stops the server: it stops accepting, closes idle connections,
answers (with `Connection: close`) and captures the requests in flight, then closes the capture; the exit code is 0.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from config import EnvironmentConfig
from config.deployments import pin_for, unit_key
from mlops.capture import CAPTURE_PREFIX, CaptureWriter
from mlops.common import UsageError, command_line, shown, unit_options
from mlops.endpoint import MAX_PORT, LocalEndpoint
from mlops.local import read_assembly
from pipeline_defs.atomic_file import make_writable_folder
from pipeline_defs.contract import VARIANT_NAME, ApprovalStatus, DeployTimeValue
from pipeline_defs.local import LocalModelRegistry, LocalS3, local_values
from pipeline_defs.local.assembly import LOCAL_ACCOUNT
from pipeline_defs.local.inference import load_package

SIGNAL_CHECK_SECONDS = 0.1


def command_serve(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if not args.local:
        raise UsageError(
            "mlops serve runs the endpoint on this machine: pass --local (the deployed endpoint is the Serving "
            "stack's; call it with mlops invoke --env)"
        )
    if not 0 <= args.port <= MAX_PORT:
        raise UsageError(f"--port {args.port}: use 0..{MAX_PORT} (0 picks a free one)")
    if not 0 <= args.sampling_percentage <= 100:
        raise UsageError(f"--sampling-percentage {args.sampling_percentage}: use 0..100 (0 captures nothing)")
    version = promoted_version(config, args.state_dir) if args.promoted else args.version
    with local_endpoint(config, args.state_dir, args.assembly, version, args.port, args.sampling_percentage) as (
        server,
        started,
    ):
        print(json.dumps(started) if args.json else _started_line(started), flush=True)
        signal_name = serve_until_stopped(server)
    written = server.capture.written if server.capture else 0
    print(f"stopped ({signal_name}): {written} request(s) captured", file=sys.stderr, flush=True)
    return 0


@contextlib.contextmanager
def local_endpoint(
    config: EnvironmentConfig, state_dir: Path, assembly_dir: Path, version: int | None, port: int, sampling: int
) -> Iterator[tuple[LocalEndpoint, dict[str, Any]]]:
    """A bound (not yet serving) local endpoint of `version` (None: the newest Approved), and what it serves."""
    group = config.model_package_group_name
    package = choose_package(LocalModelRegistry(state_dir / "registry", config.region), group, version, state_dir)
    assembly = read_assembly(assembly_dir, config)
    s3 = LocalS3(state_dir / "s3", assembly.assets)
    name = config.endpoint_name
    capture_uri = (
        f"s3://{local_values(config.region)[DeployTimeValue.ARTIFACTS_BUCKET]}/{CAPTURE_PREFIX}/{name}/{VARIANT_NAME}/"
    )
    capture_folder = s3.path(capture_uri)
    capture = writable_capture(capture_folder, sampling) if sampling else None
    with tempfile.TemporaryDirectory(prefix="mlops-serve-") as work, contextlib.ExitStack() as stack:
        code = load_package(package, s3, Path(work))
        stack.callback(code.close)
        server = _bind(code, name, port, capture)
        started = {
            "url": server.url,
            "endpoint": name,
            "variant": VARIANT_NAME,
            "model_package_arn": package["ModelPackageArn"],
            "version": package["ModelPackageVersion"],
            "capture_uri": capture_uri,
            "capture_folder": str(capture_folder),
            "sampling_percentage": sampling,
        }
        yield server, started


def writable_capture(folder: Path, sampling: int) -> CaptureWriter:
    """The capture writer, once a file could be made in `folder`: a server that cannot capture would answer every
    request with an error, so it refuses to start instead."""
    try:
        make_writable_folder(folder)
    except OSError as error:
        raise UsageError(
            f"cannot write data capture to {shown(folder)}: {error.strerror or error}: make the folder writable, "
            "or serve with --sampling-percentage 0"
        ) from None
    return CaptureWriter(folder, sampling)


def promoted_version(config: EnvironmentConfig, state_dir: Path) -> int:
    """The version `mlops promote --local` pinned for this unit in the state dir."""
    pins = state_dir / "deployments.json"
    pin = pin_for(config, pins, account=LOCAL_ACCOUNT)
    if pin is None:
        promote = command_line(
            "promote", "--local", "--latest-approved", "--state-dir", shown(state_dir), *unit_options(config)
        )
        raise UsageError(f"nothing is promoted for {unit_key(config)} in {shown(pins)}: run `{promote}`")
    return pin.version


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
    """Serve until SIGINT or SIGTERM, then stop cleanly (LocalEndpoint.stop); returns the signal's name.

    The server runs in a thread; the signal handler only records the signal (it runs in this thread between two
    bytecodes, where taking a lock could deadlock), and this thread looks for it a few times a second."""
    received: list[str] = []

    def record_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, record_signal) for number in signals}
    serving = threading.Thread(target=server.serve_forever, args=(SIGNAL_CHECK_SECONDS,), name="serve", daemon=True)
    try:
        serving.start()
        while not received and serving.is_alive():
            serving.join(SIGNAL_CHECK_SECONDS)
        server.stop()  # a second signal meanwhile is recorded, and does not interrupt the stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return received[0] if received else "stopped"


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
