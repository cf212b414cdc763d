"""How the local training run and the local endpoint scale with rows: wall time and peak RSS per step, on the step
runtime (.venv-steps: the scikit-learn image's Python and libraries, as every local run).

    .venv/bin/python bench/scaling.py [--rows 10000 100000 1000000] [--assembly cdk.out] [--jobs 1] [--batch 10000]

For each size, the bundled sample's generator (`pipeline_defs/sample_data/generate.py`, seed 7 + size: the same rows
every time) writes a churn dataset of that many customers (plus its usual dirt); the dev unit's training pipeline runs
on it locally, cold, one step at a time (`--jobs 1`, so no step competes with another for memory or cores), each job
process wrapped so that its own peak RSS and CPU time (user + system) are recorded (getrusage of the one child); the
load average at the start is printed, since wall times depend on what else shares the cores. Then the model that run
registered is served (`mlops serve --local`, no data capture) and one request carries `--batch` rows; its peak RSS is
the VmHWM of the model process (mlops/endpoint_model.py). The dataset's in-memory size is pandas' deep memory usage of
the CSV as the step runtime's `pd.read_csv` reads it by default (numbers as float64 or int64, the categories as Python
strings). "idle" is the peak RSS of a step-runtime interpreter that has only imported pandas and scikit-learn - what a
step pays before it reads a row; "over idle" is a step's peak RSS minus that, and "x data" that over the dataset's
in-memory size. Between consecutive sizes it then prints each step's time growth and its extra memory per extra MiB of
data (the marginal cost, whatever each step imports).
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import itertools
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from config import load_config
from mlops.common import project_root
from pipeline_defs.local import LocalRunner, load_assembly
from pipeline_defs.local.step_runtime import steps_python
from tools.review import REPO_ROOT, synth

RUSAGE_FILE = ".bench-rusage.json"
_GENERATOR = REPO_ROOT / "pipeline_defs" / "sample_data" / "generate.py"
_spec = importlib.util.spec_from_file_location("sample_data_generate", _GENERATOR)
assert _spec is not None and _spec.loader is not None
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)
# Runs the job's command as its only child and records that child's peak RSS (KiB on Linux), wall time and CPU time
# (user + system, all its threads: what the job costs whatever else shares the cores).
WRAPPER = """#!{python}
import json, resource, subprocess, sys, time
began = time.perf_counter()
code = subprocess.call([{python!r}, *sys.argv[1:]])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open({rusage!r}, "w") as out:
    json.dump({{"max_rss_kib": usage.ru_maxrss, "seconds": time.perf_counter() - began,
               "cpu_seconds": usage.ru_utime + usage.ru_stime}}, out)
sys.exit(code)
"""


def write_dataset(rows: int, folder: Path) -> Path:
    rng = np.random.default_rng(7 + rows)
    folder.mkdir(parents=True)
    path = folder / "part-0000.csv"
    path.write_bytes(generate.to_csv(generate.add_dirt(rng, generate.customers(rng, rows, drifted=False))))
    return path


def wrapper(folder: Path) -> str:
    path = folder / "python-with-rusage"
    path.write_text(WRAPPER.format(python=steps_python(), rusage=RUSAGE_FILE))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def idle_rss_mib() -> float:
    code = "import resource, pandas, sklearn.ensemble; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    return int(subprocess.check_output([steps_python(), "-c", code])) / 1024


def in_memory_mib(dataset: Path) -> float:
    """pandas' deep memory usage of the CSV as the step runtime's pandas reads it by default."""
    code = "import sys, pandas; print(pandas.read_csv(sys.argv[1]).memory_usage(deep=True).sum())"
    return int(subprocess.check_output([steps_python(), "-c", code, str(dataset)])) / 2**20


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024


def step_usage(work_dir: str) -> dict[str, float]:
    [found] = Path(work_dir).rglob(RUSAGE_FILE)
    usage: dict[str, float] = json.loads(found.read_text())
    return usage


def serve_batch(state: Path, assembly: Path, rows: list[str]) -> tuple[float, float]:
    """Seconds for one request of `rows` to the local endpoint, and the server's peak RSS (MiB)."""
    command = [sys.executable, "-m", "mlops.cli", "serve", "--local", "--port", "0", "--json"]
    command += ["--sampling-percentage", "0", "--state-dir", str(state), "--assembly", str(assembly)]
    server = subprocess.Popen(command, cwd=project_root(), stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(json.loads(server.stdout.readline())["url"].rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        body = "".join(rows).encode()
        began = time.perf_counter()
        connection.request(
            "POST", "/invocations", body=body, headers={"Content-Type": "text/csv", "Accept": "text/csv"}
        )
        response = connection.getresponse()
        answer = response.read()
        seconds = time.perf_counter() - began
        if response.status != 200 or len(answer.splitlines()) != len(rows):
            sys.exit(f"endpoint answered {response.status}: {answer[:200]!r}")
        [model_process] = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        return seconds, peak_rss_mib(int(model_process))
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--assembly", type=Path, default=REPO_ROOT / "cdk.out", help="`cdk synth -c env=dev` output")
    parser.add_argument("--skip-serve", action="store_true", help="training runs only")
    parser.add_argument("--jobs", type=int, default=1, help="steps at once (default 1: per-step figures alone)")
    parser.add_argument("--batch", type=int, default=10_000, help="rows in the endpoint request")
    args = parser.parse_args()
    config = load_config("dev")
    idle = idle_rss_mib()
    print(f"idle interpreter with pandas + scikit-learn: {idle:.0f} MiB; {os.cpu_count()} cores; --jobs {args.jobs}")
    print(f"load average at start: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    header = f"{'rows':>9}  {'step':<17} {'wall s':>8} {'cpu s':>7} {'peak MiB':>9} {'over idle':>10} {'x data':>7}"
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the run's interpreter probe goes through the wrapper too: its usage file lands here
        assembly_dir = args.assembly.resolve()
        if not (assembly_dir / "manifest.json").is_file():
            assembly_dir = Path(tmp) / "cdk.out"
            synth(REPO_ROOT, assembly_dir, ["env=dev"])
        assembly = load_assembly(assembly_dir, config.region)
        python = wrapper(Path(tmp))
        measured: dict[int, dict[str, tuple[float, float]]] = {}  # {rows: {step: (seconds, peak MiB)}}
        data_sizes: dict[int, float] = {}
        for rows in args.rows:
            state = Path(tmp) / f"state-{rows}"
            dataset = write_dataset(rows, state / "s3" / "local-landing" / "datasets" / f"scale-{rows}")
            data_mib = in_memory_mib(dataset)  # pandas' default parse (a column with a '?' cell stays text)
            data_sizes[rows] = data_mib
            csv_mib = dataset.stat().st_size / 2**20
            runner = LocalRunner(
                assembly.definitions[config.training_pipeline_name],
                pipeline_name=config.training_pipeline_name,
                state_dir=state,
                region=config.region,
                assets=assembly.assets,
                python=python,
                jobs=args.jobs,
            )
            began = time.perf_counter()
            uri = f"s3://local-landing/datasets/scale-{rows}/"
            result = runner.run({"InputDataUri": uri, "ExperimentId": f"scale-{rows}"})
            total = time.perf_counter() - began
            print(
                f"\n{rows:,} rows: CSV {csv_mib:.1f} MiB, in memory {data_mib:.1f} MiB; run {result.status} "
                f"in {total:.1f} s" + (f" ({result.failure_reason})" if result.failure_reason else "")
            )
            print(header)
            for step in result.steps:
                if not step.work_dir:
                    continue
                usage = step_usage(step.work_dir)
                peak = usage["max_rss_kib"] / 1024
                measured.setdefault(rows, {})[step.name] = (step.seconds, peak)
                above = max(peak - idle, 0.0)
                cpu = usage["cpu_seconds"]
                row = f"{rows:>9,}  {step.name:<17} {step.seconds:>8.1f} {cpu:>7.1f} {peak:>9.0f} {above:>10.0f}"
                print(f"{row} {above / data_mib:>6.1f}x")
            registered = any(step.type == "RegisterModel" and step.status == "Succeeded" for step in result.steps)
            if registered and not args.skip_serve:
                lines = [line.rsplit(",", 1)[0] + "\n" for line in dataset.read_text().splitlines()[1:]]
                batch = [line for line in lines if "?" not in line and ",," not in line][: args.batch]
                seconds, peak = serve_batch(state, assembly_dir, batch)
                measured.setdefault(rows, {})["endpoint batch"] = (seconds, peak)
                above = max(peak - idle, 0)
                row = f"{rows:>9,}  {'endpoint batch':<17} {seconds:>8.1f} {'':>7} {peak:>9.0f} {above:>10.0f}"
                print(f"{row}   ({len(batch):,} rows in one request; data capture off)")
    growth(measured, data_sizes)


def growth(measured: dict[int, dict[str, tuple[float, float]]], data_sizes: dict[int, float]) -> None:
    """Between consecutive sizes: how much longer each step took for how many more rows, and the extra memory it
    held per extra MiB of data (the marginal cost, free of what the interpreter and its imports hold anyway)."""
    sizes = sorted(measured)
    for small, large in itertools.pairwise(sizes):
        print(
            f"\n{small:,} -> {large:,} rows ({large / small:.0f}x the rows, "
            f"+{data_sizes[large] - data_sizes[small]:.1f} MiB of data in memory):"
        )
        print(f"  {'step':<17} {'time x':>7} {'extra MiB':>10} {'per MiB of data':>16}")
        for step, (seconds, peak) in measured[large].items():
            if step not in measured[small]:
                continue
            before_seconds, before_peak = measured[small][step]
            extra = peak - before_peak
            per_data = extra / (data_sizes[large] - data_sizes[small])
            print(f"  {step:<17} {seconds / max(before_seconds, 1e-9):>6.1f}x {extra:>10.0f} {per_data:>15.1f}x")


if __name__ == "__main__":
    main()
