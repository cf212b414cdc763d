"""Local endpoint: throughput and p50/p99 latency of single-row CSV requests, with data capture on (100%) and off (0%).

    .venv/bin/python bench/endpoint.py [--assembly cdk.out] [--requests 2000] [--threads 4] [--state-dir DIR]

The server is `mlops serve --local` in its own process (as a developer runs it); the clients are threads of this
process, each with one keep-alive HTTP connection, sending rows of the bundled sample (features only, no header) to
POST /invocations with Content-Type and Accept text/csv. Without --state-dir, `mlops demo` first trains and approves a
model in a temporary state dir (its captures go there too, and are removed with it). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from config import load_config
from mlops.cli import main as mlops
from mlops.common import default_assembly, project_root, sample_data_dir
from mlops.endpoint import request_rows

SAMPLE = sample_data_dir() / "churn" / "part-0000.csv"
WARM_UP = 50


def rows() -> list[bytes]:
    return request_rows(SAMPLE)


def start_server(state_dir: Path, assembly: Path, sampling: int) -> tuple[subprocess.Popen[str], int]:
    command = [sys.executable, "-m", "mlops.cli", "serve", "--local", "--port", "0", "--json"]
    command += ["--sampling-percentage", str(sampling), "--state-dir", str(state_dir), "--assembly", str(assembly)]
    server = subprocess.Popen(command, cwd=project_root(), stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    started = json.loads(server.stdout.readline())
    return server, int(started["url"].rsplit(":", 1)[1])


def client(port: int, bodies: list[bytes], latencies: list[float]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
    for body in bodies:
        began = time.perf_counter()
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - began)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
    connection.close()


def measure(port: int, requests: int, threads: int) -> dict[str, float]:
    sample = rows()
    client(port, [sample[i % len(sample)] for i in range(WARM_UP)], [])
    shares = [[sample[i % len(sample)] for i in range(n, requests, threads)] for n in range(threads)]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    workers = [threading.Thread(target=client, args=(port, shares[n], latencies[n])) for n in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    every = sorted(latency for part in latencies for latency in part)
    percentiles = statistics.quantiles(every, n=100)
    return {"rps": len(every) / elapsed, "p50_ms": percentiles[49] * 1000, "p99_ms": percentiles[98] * 1000}


def run(state_dir: Path, assembly: Path, requests: int, threads: int) -> dict[str, dict[str, float]]:
    figures = {}
    for label, sampling in (("capture on (100%)", 100), ("capture off (0%)", 0)):
        server, port = start_server(state_dir, assembly, sampling)
        try:
            figures[label] = measure(port, requests, threads)
        finally:
            server.terminate()
            server.wait(30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--assembly", type=Path, default=default_assembly(load_config("dev", None)))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--state-dir", type=Path, help="a state dir with an Approved version (default: a fresh demo)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-endpoint-") as temporary:
        state_dir = args.state_dir
        if state_dir is None:
            state_dir = Path(temporary) / "state"
            print("training a model with mlops demo ...", file=sys.stderr, flush=True)
            with contextlib.redirect_stdout(sys.stderr):
                trained = mlops(["demo", "--assembly", str(args.assembly), "--state-dir", str(state_dir)])
            if trained != 0:
                sys.exit("mlops demo did not go as expected")
        figures = run(state_dir, args.assembly, args.requests, args.threads)
    print(f"local endpoint, {args.requests} single-row CSV requests from {args.threads} client threads")
    for label, figure in figures.items():
        rps, p50, p99 = figure["rps"], figure["p50_ms"], figure["p99_ms"]
        print(f"  {label:18}  {rps:7.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    on, off = figures["capture on (100%)"], figures["capture off (0%)"]
    print(
        f"  capture on / off: throughput x{on['rps'] / off['rps']:.2f}, p50 x{on['p50_ms'] / off['p50_ms']:.2f}, "
        f"p99 x{on['p99_ms'] / off['p99_ms']:.2f}"
    )


if __name__ == "__main__":
    main()
