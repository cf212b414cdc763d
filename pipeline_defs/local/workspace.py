"""What the steps of one run work with: `LocalRunner.run` builds it, `Execution` and the step handlers use it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline_defs.local.assembly import LOCAL_ACCOUNT
from pipeline_defs.local.cache import CacheIndex
from pipeline_defs.local.registry import LocalModelRegistry
from pipeline_defs.local.s3 import LocalS3
from pipeline_defs.local.stopping import Stopping


@dataclass(frozen=True)
class Workspace:
    pipeline_name: str
    region: str
    state_dir: Path
    s3: LocalS3  # the state dir's buckets
    registry: LocalModelRegistry
    cache: CacheIndex  # the pipeline's step cache
    use_cache: bool  # False: every step runs (and records fresh cache entries)
    record_cache: bool  # False: a run that leaves the cache as it found it (a selective run)
    python: str  # the interpreter every job runs with
    clock: Callable[[], datetime]
    progress: Callable[[str], None]  # one line at a time, from any step's thread
    stopping: Stopping  # the run's: signals, timeouts, and the job processes it must end

    @property
    def pipeline_arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{LOCAL_ACCOUNT}:pipeline/{self.pipeline_name}"

    def job_arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{LOCAL_ACCOUNT}:{kind}/{name.lower()}"
