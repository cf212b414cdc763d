"""Local buckets: s3://<bucket>/<key> is a file under the state dir; the CDK asset bucket is the assembly's files.

s3 = LocalS3(state_dir / "s3", assembly.assets)
s3.download("s3://local-landing/datasets/sample-v1/", work / "input")   # S3Prefix semantics
s3.upload(work / "output", "s3://local-artifacts/pipelines/...")         # a file, or every file of a folder

A key is a path below its bucket's folder and never leaves it: keys with `.` or `..` segments or a leading `/`
(S3 would take them literally) are refused rather than resolved, so no URI reaches outside the state dir.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_defs.local.errors import StepFailed

# S3's bucket naming rule (3-63 characters): also what keeps a bucket name from being a path.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def split_uri(uri: Any) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI; StepFailed for anything else."""
    if not isinstance(uri, str) or not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise StepFailed(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class LocalS3:
    """s3://<bucket>/<key> is <root>/<bucket>/<key>; asset objects are the assembly's staged files (read-only)."""

    def __init__(self, root: Path, assets: Mapping[str, Path] | None = None) -> None:
        self.root = Path(root)
        self.assets = dict(assets or {})
        self.asset_buckets = {split_uri(uri)[0] for uri in self.assets}

    def path(self, uri: str) -> Path:
        """Where an object of a local bucket lives (assets are not here: they are read through `objects`)."""
        bucket, key = split_uri(uri)
        if bucket in self.asset_buckets:
            raise StepFailed(f"{uri}: the CDK asset bucket is read-only")
        return self._bucket_root(uri, bucket, key) / key

    def objects(self, uri: str) -> list[tuple[str, Path]]:
        """(key, file) of every object whose key starts with the URI's key, as S3 lists them, sorted by key."""
        bucket, prefix = split_uri(uri)
        if bucket in self.asset_buckets:
            return sorted((split_uri(u)[1], path) for u, path in self.assets.items() if u.startswith(uri))
        bucket_root = self._bucket_root(uri, bucket, prefix)
        folder = bucket_root / prefix.rpartition("/")[0]
        if not folder.is_dir():
            return []
        found = ((path.relative_to(bucket_root).as_posix(), path) for path in folder.rglob("*") if path.is_file())
        return sorted((key, path) for key, path in found if key.startswith(prefix))

    def fingerprint(self, uri: str) -> str | None:
        """SHA-256 over the keys and contents of the objects under `uri`; None for the (content-addressed) assets."""
        if split_uri(uri)[0] in self.asset_buckets:
            return None
        digest = hashlib.sha256()
        for key, path in self.objects(uri):
            with path.open("rb") as handle:
                digest.update(f"{key}\0{hashlib.file_digest(handle, 'sha256').hexdigest()}\n".encode())
        return digest.hexdigest()

    def _bucket_root(self, uri: str, bucket: str, key: str) -> Path:
        """The folder of a local bucket, once `key` is known to stay inside it."""
        if not _BUCKET_NAME.fullmatch(bucket):
            raise StepFailed(f"{uri}: {bucket!r} is not an S3 bucket name")
        if key.startswith("/") or any(segment in (".", "..") for segment in key.split("/")):
            raise StepFailed(f"{uri}: a key with '.' or '..' segments or a leading '/' would leave the local bucket")
        return self.root / bucket

    def download(self, uri: str, destination: Path, shard: tuple[int, int] = (0, 1)) -> int:
        """Copy every object under the prefix `uri` into `destination` (S3Prefix semantics); returns the count.

        `shard` = (index, count): only every count-th object in key order from the index-th on is copied
        (ShardedByS3Key: each of `count` instances gets its own share of the objects); the count returned is still
        that of every object under the prefix.
        """
        _, prefix = split_uri(uri)
        objects = self.objects(uri)
        index, count = shard
        for key, source in objects[index::count]:
            target = destination / _relative(key, prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        return len(objects)

    def upload(self, source: Path, uri: str) -> None:
        """A file to the object `uri`, or every file of a directory below the prefix `uri`."""
        if source.is_file():
            target = self.path(uri)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            return
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            self.upload(path, f"{uri.rstrip('/')}/{path.relative_to(source).as_posix()}")

    def upload_tarball(self, directory: Path, uri: str) -> None:
        """The files of `directory` as the gzipped tarball `uri` (how SageMaker uploads a model or output dir)."""
        target = self.path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(target, "w:gz") as tar:
            for path in sorted(directory.rglob("*")):
                tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)

    def read_bytes(self, uri: str) -> bytes:
        _, key = split_uri(uri)
        exact = [path for object_key, path in self.objects(uri) if object_key == key]
        if not exact:
            raise StepFailed(f"{uri} does not exist (locally: {self.describe(uri)})")
        return exact[0].read_bytes()

    def describe(self, uri: str) -> str:
        """Where `uri` is on this machine, for people."""
        bucket, _ = split_uri(uri)
        if bucket in self.asset_buckets:
            return str(self.assets.get(uri, f"an asset of the assembly ({uri})"))
        return str(self.path(uri))


def _relative(key: str, prefix: str) -> str:
    """Where an object listed under `prefix` lands below the download folder."""
    if key == prefix:  # the URI names one object: it lands under its own name
        return key.rpartition("/")[2]
    if key[len(prefix) :].startswith("/") or prefix.endswith("/") or not prefix:
        return key[len(prefix) :].lstrip("/")
    # a longer name in the same folder (prefix `a/b` matched `a/bc/d`): keep it relative to `a/`
    return key[len(prefix.rpartition("/")[0]) :].lstrip("/")
