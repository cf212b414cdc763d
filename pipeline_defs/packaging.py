"""Step code as content-addressed files: single scripts for processing, deterministic tarballs otherwise.

A tarball's bytes depend only on the files' names and contents (fixed mtime, owner and mode, no gzip
timestamp), so its CDK asset hash - and with it the step's cache key - changes exactly when the code does.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

STEPS_DIR = Path(__file__).resolve().parent / "steps"
# The step scripts' shared library (StepError, the contract, reports, the capture format): a package of its own at
# the repository root, so the CLI and the tests import the very modules the containers run.
STEP_LIBRARY_DIR = Path(__file__).resolve().parents[1] / "steplib"

# The one declared feature contract (features, label, row key, policies): every job step that reads it mounts this
# file as an input, the serving code carries it in its tarball, so a contract change re-runs exactly those steps.
FEATURE_CONTRACT = "feature_contract.json"
# Processing steps run one file: `python3 /opt/ml/processing/input/code/<asset hash>.py`, and import the step library
# from this zip, mounted at /opt/ml/processing/input/steplib/<asset hash>.zip (Python imports from a zip on sys.path;
# SageMaker does not unpack processing inputs). Its content hash is in the cache key of every step that mounts it.
STEP_LIBRARY = "steplib.zip"
PROCESSING_SCRIPTS = (
    "resolve_model.py",
    "merge_capture.py",
    "preprocess.py",
    "data_quality.py",
    "evaluate.py",
    "summarize_scores.py",
)
# Shipped as they are, one content-addressed asset each.
FILE_ASSETS = (*PROCESSING_SCRIPTS, FEATURE_CONTRACT)
# Training and serving containers unpack a source tarball and run the named script from it.
# Train's tarball carries the step library as a steplib/ folder beside train.py.
# The serving code (what a registered version's SAGEMAKER_SUBMIT_DIRECTORY names).
INFERENCE_TARBALL = "inference.tar.gz"
SOURCE_TARBALLS = {
    # Both training engines' scripts (config training_engine): the definition names the one its job runs.
    "train.tar.gz": ("train.py", "train_xgboost.py"),
    INFERENCE_TARBALL: ("inference.py", FEATURE_CONTRACT),
}
# The inference tarball too: a model of training_engine xgboost unpickles as steplib's BoostedTrees.
TARBALLS_WITH_LIBRARY = ("train.tar.gz", INFERENCE_TARBALL)


def library_files(library_dir: Path = STEP_LIBRARY_DIR) -> dict[str, bytes]:
    """{`steplib/<module>.py`: bytes} of the step library's modules."""
    return {f"steplib/{path.name}": path.read_bytes() for path in sorted(library_dir.glob("*.py"))}


def tarball_bytes(files: dict[str, bytes]) -> bytes:
    """A gzipped tarball of {archive name: bytes} whose bytes depend only on those names and contents."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


def library_zip_bytes(library_dir: Path = STEP_LIBRARY_DIR) -> bytes:
    """The step library as a zip Python imports from: stored (no compressor version in the bytes), fixed timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in library_files(library_dir).items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def archive_bytes(steps_dir: Path = STEPS_DIR, library_dir: Path = STEP_LIBRARY_DIR) -> dict[str, bytes]:
    """{archive name: bytes} of every built code object: the source tarballs and the step library's zip."""
    archives = {STEP_LIBRARY: library_zip_bytes(library_dir)}
    for name, members in SOURCE_TARBALLS.items():
        files = {member: (steps_dir / member).read_bytes() for member in members}
        archives[name] = tarball_bytes(files | (library_files(library_dir) if name in TARBALLS_WITH_LIBRARY else {}))
    return archives


def write_archives(destination: Path, steps_dir: Path = STEPS_DIR) -> dict[str, Path]:
    """Write every built code object (`archive_bytes`) into `destination`; returns {archive name: path}."""
    destination.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in archive_bytes(steps_dir).items():
        path = destination / name
        path.write_bytes(data)
        paths[name] = path
    return paths


def source_files(code_name: str, steps_dir: Path = STEPS_DIR, library_dir: Path = STEP_LIBRARY_DIR) -> list[Path]:
    """The checkout's files a step code object is built from: a script or the contract itself, an archive's members."""
    library = sorted(library_dir.glob("*.py"))
    if code_name == STEP_LIBRARY:
        return library
    if code_name in SOURCE_TARBALLS:
        members = [steps_dir / member for member in SOURCE_TARBALLS[code_name]]
        return members + (library if code_name in TARBALLS_WITH_LIBRARY else [])
    return [steps_dir / code_name]


def code_bytes(steps_dir: Path = STEPS_DIR, library_dir: Path = STEP_LIBRARY_DIR) -> dict[str, bytes]:
    """{code name: bytes} of every step code object, exactly as it is shipped."""
    code = {name: (steps_dir / name).read_bytes() for name in FILE_ASSETS}
    return code | archive_bytes(steps_dir, library_dir)


def content_addressed_uris(
    bucket: str, steps_dir: Path = STEPS_DIR, library_dir: Path = STEP_LIBRARY_DIR
) -> dict[str, str]:
    """{code name: s3://<bucket>/<sha256><ext>}: code URIs without CDK, keyed by content like CDK assets are.

    For building definitions outside a synth (tests, benchmarks); the deployed unit uses CDK's asset keys.
    """
    return {
        name: f"s3://{bucket}/{hashlib.sha256(data).hexdigest()}{Path(name).suffix}"
        for name, data in code_bytes(steps_dir, library_dir).items()
    }
