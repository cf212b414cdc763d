"""`mlops invoke (--local [--port P] | --env E) [FILE | -]`: send one request to the unit's endpoint (InvokeEndpoint).

`--env` calls the deployed endpoint (`<prefix>-endpoint`) in the unit's region; `--local` calls `mlops serve --local`
through the same boto3 sagemaker-runtime client, pointed at http://127.0.0.1:<port> with dummy credentials. The body
comes from FILE, or stdin when FILE is `-` or absent. The content type defaults to the file's (`.json`:
application/json, else text/csv) and Accept to the content type: Model Monitor wants the captured input and output
in the same encoding. The response body goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from config import EnvironmentConfig
from mlops.aws import AwsCallFailed, client
from mlops.common import UsageError, shown
from mlops.endpoint import INFERENCE_ID, MAX_PAYLOAD, MAX_PORT

# Errors about the request itself: bad input (exit 2), not a failing service.
_REQUEST_ERRORS = ("ValidationError", "ModelError")


def invoke_request(
    endpoint: str, body: bytes, content_type: str, accept: str, inference_id: str | None
) -> dict[str, Any]:
    """The InvokeEndpoint request; UsageError for what the service would refuse."""
    if not body:
        raise UsageError("the request body is empty: pass a CSV or JSON file, or pipe one into stdin")
    if len(body) > MAX_PAYLOAD:
        raise UsageError(f"the request body is {len(body)} bytes, over InvokeEndpoint's limit of {MAX_PAYLOAD}")
    request: dict[str, Any] = {"EndpointName": endpoint, "Body": body, "ContentType": content_type, "Accept": accept}
    if inference_id is not None:
        if not INFERENCE_ID.fullmatch(inference_id):
            raise UsageError(f"--inference-id {inference_id!r}: use 1-64 printable characters")
        request["InferenceId"] = inference_id
    return request


def command_invoke(args: argparse.Namespace, config: EnvironmentConfig) -> int:
    if args.local and not 1 <= args.port <= MAX_PORT:
        raise UsageError(f"--port {args.port}: use 1..{MAX_PORT} (the port mlops serve --local printed)")
    body = read_body(args.file)
    content_type = args.content_type or ("application/json" if str(args.file).endswith(".json") else "text/csv")
    request = invoke_request(
        args.endpoint or config.endpoint_name, body, content_type, args.accept or content_type, args.inference_id
    )
    where = f"http://127.0.0.1:{args.port}" if args.local else config.region
    runtime = local_runtime(where, config) if args.local else client("sagemaker-runtime", config)
    try:
        response = runtime.invoke_endpoint(**request)
        answer: bytes = response["Body"].read()
    except ClientError as error:
        code, message = error.response["Error"].get("Code", ""), error.response["Error"].get("Message", error)
        failure = f"{request['EndpointName']} ({where}): {code}: {message}"
        raise (UsageError if code in _REQUEST_ERRORS else AwsCallFailed)(failure) from None
    except EndpointConnectionError:
        hint = f"start one: mlops serve --local --port {args.port}" if args.local else "is the region right?"
        raise AwsCallFailed(f"nothing answers at {where} ({hint})") from None
    except BotoCoreError as error:
        raise AwsCallFailed(f"invoking {request['EndpointName']} ({where}) failed: {error}") from None
    if args.json:
        print(
            json.dumps(
                {
                    "endpoint": request["EndpointName"],
                    "content_type": response.get("ContentType"),
                    "invoked_variant": response.get("InvokedProductionVariant"),
                    "body": answer.decode("utf-8", errors="replace"),
                }
            )
        )
    else:
        text = answer.decode("utf-8", errors="replace")
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def read_body(file: str | None) -> bytes:
    if file in (None, "-"):
        return sys.stdin.buffer.read()
    path = Path(str(file))
    if not path.is_file():
        raise UsageError(f"{shown(path)} is not a file")
    return path.read_bytes()


def local_runtime(endpoint_url: str, config: EnvironmentConfig) -> Any:
    """A sagemaker-runtime client for the local endpoint: same code path as AWS, dummy credentials, no retries."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker-runtime",
        region_name=config.region,
        endpoint_url=endpoint_url,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
