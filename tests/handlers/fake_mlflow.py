"""An in-memory MLflow tracking server behind the handler's HTTP layer: the REST calls the function makes, with
MLflow's semantics where the function depends on them, and a check of every request's SigV4 signature.

Semantics kept from MLflow's server (mlflow/server/handlers.py, mlflow/store/tracking/sqlalchemy_store.py): an
unknown experiment name is 404 RESOURCE_DOES_NOT_EXIST, a second create of a name 400 RESOURCE_ALREADY_EXISTS, a
metric logged again with the same key, value, timestamp and step adds nothing to its history, a parameter logged
again with another value is 400 INVALID_PARAMETER_VALUE, runs/search with `run_view_type` ALL finds runs of any status.
Only the one filter form the function sends (tags.`<key>` = '<value>') is understood; any other fails the test. A run
created with `run_name` has it in its info and as the tag mlflow.runName, as MLflow does.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

_TAG_FILTER = re.compile(r"tags\.`([A-Za-z0-9_.]+)` = '([^']*)'")
_SIGNATURE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[a-z0-9-]+)/(?P<service>[a-z-]+)/aws4_request, "
    r"SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=[0-9a-f]{64}"
)


@dataclass
class Run:
    run_id: str
    experiment_id: str
    run_name: str
    start_time: int | None
    status: str = "RUNNING"
    end_time: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)  # key, value, timestamp, step

    def as_json(self) -> dict[str, Any]:
        return {
            "info": {
                "run_id": self.run_id,
                "run_name": self.run_name,
                "experiment_id": self.experiment_id,
                "status": self.status,
            },
            "data": {"tags": [{"key": k, "value": v} for k, v in self.tags.items()]},
        }


class FakeMlflow:
    """`send(method, url, headers, body)` as the handler's HTTP layer; `failures` queues HTTP statuses to answer."""

    def __init__(self, base_url: str, routing: tuple[str, str], service: str, region: str) -> None:
        self.base_url = base_url
        self.routing = routing
        self.service = service
        self.region = region
        self.experiments: dict[str, str] = {}  # name -> id
        self.runs: dict[str, Run] = {}
        self.requests: list[tuple[str, str]] = []  # (method, API path)
        self.failures: dict[str, list[int]] = {}  # API path -> statuses to answer before succeeding

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> tuple[int, bytes]:
        parsed = urllib.parse.urlsplit(url)
        assert f"{parsed.scheme}://{parsed.netloc}" == self.base_url, url
        path = parsed.path.removeprefix("/api/2.0/mlflow/")
        self._check_signature(headers, body)
        self.requests.append((method, path))
        if self.failures.get(path):
            status = self.failures[path].pop(0)
            return status, json.dumps({"error_code": "INTERNAL_ERROR", "message": "injected"}).encode()
        query = dict(urllib.parse.parse_qsl(parsed.query))
        payload = json.loads(body) if body else {}
        handler = getattr(self, "_" + path.replace("/", "_").replace("-", "_"))
        status, answer = handler(method, query, payload)
        return status, json.dumps(answer).encode()

    def _check_signature(self, headers: dict[str, str], body: bytes | None) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        signed = _SIGNATURE.fullmatch(lower.get("authorization", ""))
        assert signed is not None, lower.get("authorization")
        assert (signed["service"], signed["region"]) == (self.service, self.region)
        assert {"host", "x-amz-date", self.routing[0]} <= set(signed["headers"].split(";")), signed["headers"]
        assert lower[self.routing[0]] == self.routing[1]
        assert lower["x-amz-content-sha256"] == hashlib.sha256(body or b"").hexdigest()

    # --- the endpoints --------------------------------------------------------------------------------------------

    def _experiments_get_by_name(self, method: str, query: dict[str, str], _: Any) -> tuple[int, dict[str, Any]]:
        assert method == "GET"
        name = query["experiment_name"]
        if name not in self.experiments:
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Could not find experiment '{name}'"}
        return 200, {"experiment": {"experiment_id": self.experiments[name], "name": name}}

    def _experiments_create(self, method: str, _: Any, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert method == "POST"
        if payload["name"] in self.experiments:
            return 400, {"error_code": "RESOURCE_ALREADY_EXISTS", "message": "exists"}
        self.experiments[payload["name"]] = str(len(self.experiments) + 1)
        return 200, {"experiment_id": self.experiments[payload["name"]]}

    def _runs_search(self, method: str, _: Any, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert method == "POST" and payload["run_view_type"] == "ALL"
        matched = _TAG_FILTER.fullmatch(payload["filter"])
        assert matched is not None, payload["filter"]
        key, value = matched.groups()
        runs = [
            run.as_json()
            for run in self.runs.values()
            if run.experiment_id in payload["experiment_ids"] and run.tags.get(key) == value
        ]
        return 200, {"runs": runs[: payload["max_results"]]} if runs else {}

    def _runs_create(self, method: str, _: Any, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert method == "POST" and payload["experiment_id"] in self.experiments.values()
        run = Run(f"run{len(self.runs) + 1}", payload["experiment_id"], payload["run_name"], payload.get("start_time"))
        run.tags = {tag["key"]: tag["value"] for tag in payload.get("tags", [])} | {"mlflow.runName": run.run_name}
        self.runs[run.run_id] = run
        return 200, {"run": run.as_json()}

    def _runs_log_batch(self, method: str, _: Any, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert method == "POST"
        assert len(payload["metrics"]) <= 1000 and len(payload["params"]) <= 100 and len(payload["tags"]) <= 100
        run = self.runs[payload["run_id"]]
        for param in payload["params"]:
            if run.params.get(param["key"], param["value"]) != param["value"]:
                return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": f"{param['key']} changed"}
            run.params[param["key"]] = param["value"]
        for metric in payload["metrics"]:
            entry = (metric["key"], metric["value"], metric["timestamp"], metric["step"])
            if entry not in run.metrics:
                run.metrics.append(entry)
        run.tags |= {tag["key"]: tag["value"] for tag in payload["tags"]}
        return 200, {}

    def _runs_update(self, method: str, _: Any, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert method == "POST"
        run = self.runs[payload["run_id"]]
        run.status, run.end_time = payload["status"], payload.get("end_time")
        return 200, {"run_info": {"run_id": run.run_id, "status": run.status}}

    # --- reading it back ------------------------------------------------------------------------------------------

    def parents(self) -> list[Run]:
        return [run for run in self.runs.values() if run.tags.get("mlops.role") == "record"]

    def children(self, parent: Run) -> dict[str, Run]:
        return {run.run_name: run for run in self.runs.values() if run.tags.get("mlflow.parentRunId") == parent.run_id}
