"""`mlops dataset put DIR --id ID --env E`: the dataset into the deployed unit's landing bucket.

The bucket and the data key come from the deployed `<prefix>-Storage` outputs (`TrainingDataBucketName`,
`DataKeyArn`). Each file is uploaded with SSE-KMS under that key through boto3's managed transfer (multipart above
`MULTIPART_THRESHOLD`) and carries its SHA-256 as metadata, so a resumed upload skips what is already there; the
marker is written last with `If-None-Match: *`, so two producers racing for one id cannot both complete it.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from config import EnvironmentConfig
from mlops.aws import AwsCallFailed, client, stack_outputs
from mlops.dataset_upload import (
    LocalFile,
    Present,
    Progress,
    already_put,
    dataset_exists,
    files_to_upload,
    same_dataset,
    send_files,
)
from pipeline_defs.trigger_rules import trigger_rules

STORAGE_STACK = "Storage"
BUCKET_OUTPUT = "TrainingDataBucketName"
KEY_OUTPUT = "DataKeyArn"
# boto3's managed transfer: files above the threshold go up in parts of this size, several at a time. 64 MiB keeps
# small datasets at one PutObject each, and a 5 TB object under S3's 10,000-part limit needs 525 MiB parts: boto3
# raises the part size itself when a file needs it.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNK_SIZE = 64 * 1024 * 1024
CHECKSUM_METADATA = "sha256"  # x-amz-meta-sha256: how a resumed upload recognises a file that is already there


class S3Landing:
    """The deployed landing bucket of a unit."""

    def __init__(self, s3: Any, bucket: str, key_arn: str) -> None:
        self.s3, self.bucket, self.key_arn = s3, bucket, key_arn

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def present(self, prefix: str) -> Present:
        """{key below prefix: () -> (size, sha256 metadata)} of the objects already there (HEAD only when asked)."""
        found: Present = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                found[key[len(prefix) :]] = functools.partial(self._described, key, int(item["Size"]))
        return found

    def _described(self, key: str, size: int) -> tuple[int, str | None]:
        metadata = self.s3.head_object(Bucket=self.bucket, Key=key).get("Metadata", {})
        return size, metadata.get(CHECKSUM_METADATA)

    def upload(self, item: LocalFile, key: str, progress: Progress) -> None:
        from boto3.s3.transfer import TransferConfig

        self.s3.upload_file(
            str(item.path),
            self.bucket,
            key,
            ExtraArgs={**self._encryption(), "Metadata": {CHECKSUM_METADATA: item.sha256}},
            Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNK_SIZE),
            Callback=progress,
        )

    def write_marker(self, key: str) -> bool:
        """The empty marker object, only if none exists (If-None-Match); False when one does."""
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"", IfNoneMatch="*", **self._encryption())
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return False
            raise
        return True

    def _encryption(self) -> dict[str, str]:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.key_arn}


def put_to_aws(args: argparse.Namespace, config: EnvironmentConfig, files: list[LocalFile]) -> int:
    from boto3.exceptions import S3UploadFailedError  # boto3 loads only when a command calls AWS

    outputs = stack_outputs(client("cloudformation", config), config, STORAGE_STACK)
    landing = S3Landing(client("s3", config), outputs[BUCKET_OUTPUT], outputs[KEY_OUTPUT])
    prefix = f"{config.dataset_prefix}{args.id}/"
    marker = prefix + config.marker_name
    step = "listing"
    try:
        present = landing.present(prefix)
        if already_put(files, present, config.marker_name):
            print(same_dataset(landing.uri(prefix)), file=sys.stderr)
            return 0
        if config.marker_name in present:
            raise dataset_exists(landing.uri(marker))
        step = "uploading"
        upload = files_to_upload(files, present)
        send_files(upload, len(files), lambda item, progress: landing.upload(item, prefix + item.key, progress))
        step = "writing the marker"
        if not landing.write_marker(marker):
            raise dataset_exists(landing.uri(marker))
    except (BotoCoreError, ClientError, S3UploadFailedError, OSError) as error:
        raise AwsCallFailed(
            f"{step} {landing.uri(prefix)} failed: {error}. No marker was written, so no training started; "
            "re-run the same command to resume (files already uploaded are skipped)"
        ) from None
    print(
        json.dumps({"dataset_uri": landing.uri(prefix), "marker": landing.uri(marker), "files": len(files)})
        if args.json
        else f"put {len(files)} file(s) into {landing.uri(prefix)}, marker last: the trigger starts "
        f"{config.training_pipeline_name} with ExperimentId={trigger_rules().dataset_experiment_id(args.id)}"
    )
    return 0
