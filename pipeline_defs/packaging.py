"""Step code as content-addressed files: single scripts for processing, deterministic tarballs otherwise.

A tarball's bytes depend only on the files' names and contents (fixed mtime, owner and mode, no gzip
timestamp), so its CDK asset hash - and with it the step's cache key - changes exactly when the code does.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

STEPS_DIR = Path(__file__).resolve().parent / "steps"

# The one declared feature contract (features, label, row key, policies): every job step that reads it mounts this
# file as an input, the serving code carries it in its tarball, so a contract change re-runs exactly those steps.
FEATURE_CONTRACT = "feature_contract.json"
# Processing steps run one file: `python3 /opt/ml/processing/input/code/<asset hash>.py`.
PROCESSING_SCRIPTS = ("resolve_model.py", "merge_capture.py", "preprocess.py", "data_quality.py", "evaluate.py")
# Shipped as they are, one content-addressed asset each.
FILE_ASSETS = (*PROCESSING_SCRIPTS, FEATURE_CONTRACT)
# Training and serving containers unpack a source tarball and run the named script from it.
SOURCE_TARBALLS = {"train.tar.gz": ("train.py",), "inference.tar.gz": ("inference.py", FEATURE_CONTRACT)}


def tarball_bytes(files: tuple[str, ...], steps_dir: Path = STEPS_DIR) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = (steps_dir / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


def write_tarballs(destination: Path, steps_dir: Path = STEPS_DIR) -> dict[str, Path]:
    """Write every source tarball into `destination`; returns {tarball name: path}."""
    destination.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, files in SOURCE_TARBALLS.items():
        path = destination / name
        path.write_bytes(tarball_bytes(files, steps_dir))
        paths[name] = path
    return paths


def code_bytes(steps_dir: Path = STEPS_DIR) -> dict[str, bytes]:
    """{code name: bytes} of every step code object, exactly as it is shipped."""
    code = {name: (steps_dir / name).read_bytes() for name in FILE_ASSETS}
    return code | {name: tarball_bytes(files, steps_dir) for name, files in SOURCE_TARBALLS.items()}


def content_addressed_uris(bucket: str, steps_dir: Path = STEPS_DIR) -> dict[str, str]:
    """{code name: s3://<bucket>/<sha256><ext>}: code URIs without CDK, keyed by content like CDK assets are.

    For building definitions outside a synth (tests, benchmarks); the deployed unit uses CDK's asset keys.
    """
    return {
        name: f"s3://{bucket}/{hashlib.sha256(data).hexdigest()}{Path(name).suffix}"
        for name, data in code_bytes(steps_dir).items()
    }
