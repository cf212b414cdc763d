"""Pipeline definitions as code: the DSL over the SageMaker SDK, both pipelines, step scripts, local runner.

The SageMaker SDK needs these before its first import (pipeline_defs.sdk explains why); setting them here,
at package import, puts them ahead of any `sagemaker` import in the package's modules, whatever their order.
"""

import os

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
