"""The pipeline graphs: mermaid rendering of a definition (pipeline_defs.graph), the README's copies, and the
developer script that refreshes them (tools/readme_graphs.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from config import load_config
from pipeline_defs import graph
from tools import readme_graphs

DEV = load_config("dev")
SYNTHETIC = {
    "Version": "2020-12-01",
    "Parameters": [{"Name": "Threshold", "Type": "Float", "DefaultValue": 0.5}],
    "Steps": [
        {
            "Name": "Prepare",
            "Type": "Processing",
            "Arguments": {
                "ProcessingOutputConfig": {"Outputs": [{"OutputName": "data", "S3Output": {"S3Uri": "s3://b"}}]}
            },
            "CacheConfig": {"Enabled": True, "ExpireAfter": "P7D"},
        },
        {
            "Name": "Fit",
            "Type": "Training",
            "Arguments": {
                "InputDataConfig": [
                    {
                        "DataSource": {
                            "S3DataSource": {
                                "S3Uri": {"Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['data'].S3Output.S3Uri"}
                            }
                        }
                    }
                ]
            },
            "CacheConfig": {"Enabled": False},
        },
        {
            "Name": "Score",
            "Type": "Processing",
            "DependsOn": ["Fit"],
            "Arguments": {
                "ProcessingOutputConfig": {"Outputs": [{"OutputName": "report", "S3Output": {"S3Uri": "s3://b"}}]}
            },
            "PropertyFiles": [{"PropertyFileName": "Report", "OutputName": "report", "FilePath": "report.json"}],
        },
        {
            "Name": "Good enough?",
            "Type": "Condition",
            "Arguments": {
                "Conditions": [
                    {
                        "Type": "GreaterThanOrEqualTo",
                        "LeftValue": {
                            "Std:JsonGet": {
                                "PropertyFile": {"Get": "Steps.Score.PropertyFiles.Report"},
                                "Path": "score",
                            }
                        },
                        "RightValue": {"Get": "Parameters.Threshold"},
                    }
                ],
                "IfSteps": [
                    {
                        "Name": "Publish",
                        "Type": "RegisterModel",
                        "Arguments": {"ModelDataUrl": {"Get": "Steps.Fit.ModelArtifacts.S3ModelArtifacts"}},
                    }
                ],
                "ElseSteps": [{"Name": "end", "Type": "Fail", "Arguments": {"ErrorMessage": "too low"}}],
            },
        },
    ],
}


def render(definition: dict) -> list[str]:
    return graph.mermaid(json.dumps(definition)).splitlines()


def test_synthetic_definition_renders_nodes_edges_branches_and_markers() -> None:
    assert graph.reference_errors(SYNTHETIC) == []
    assert render(SYNTHETIC) == [
        "flowchart TD",
        '  Prepare["Prepare<br/>Processing<br/>cached P7D"]',
        '  Fit["Fit<br/>Training"]',
        '  Score["Score<br/>Processing"]',
        '  Good_enough_{"Good enough?<br/>Condition"}',
        '  Publish["Publish<br/>RegisterModel"]',
        '  step_end["end<br/>Fail"]',
        "  Prepare --> Fit",
        "  Fit -.-> Score",
        "  Score --> Good_enough_",
        "  Good_enough_ -->|true| Publish",
        "  Good_enough_ -->|false| step_end",
        "  Fit --> Publish",
        "  classDef cached stroke-dasharray: 5 5",
        "  class Prepare cached",
        "  classDef fail fill:#fdd,stroke:#c00",
        "  class step_end fail",
    ]


def test_a_dependency_with_data_is_drawn_once_as_a_data_edge() -> None:
    definition = copy.deepcopy(SYNTHETIC)
    definition["Steps"][1]["DependsOn"] = ["Prepare"]

    lines = render(definition)
    assert "  Prepare --> Fit" in lines
    assert "  Prepare -.-> Fit" not in lines


def test_each_reference_makes_one_edge_and_broken_ones_none() -> None:
    definition = copy.deepcopy(SYNTHETIC)
    publish = definition["Steps"][3]["Arguments"]["IfSteps"][0]
    publish["Arguments"]["ModelMetrics"] = {"Get": "Steps.Fit.ModelArtifacts.S3ModelArtifacts"}
    publish["Arguments"]["Extra"] = {"Get": "Steps.Missing.Properties"}

    lines = render(definition)
    assert lines.count("  Fit --> Publish") == 1
    assert not [line for line in lines if "Missing" in line]


def test_node_ids_are_unique_and_safe_and_labels_escape_quotes() -> None:
    definition = {
        "Steps": [
            {"Name": 'say "hi"', "Type": "Fail", "Arguments": {}},
            {"Name": "say__hi_", "Type": "Fail", "Arguments": {}},
            {"Name": "1st", "Type": "Fail", "Arguments": {}},
        ]
    }

    assert render(definition)[1:4] == [
        '  say__hi_["say #quot;hi#quot;<br/>Fail"]',
        '  say__hi__2["say__hi_<br/>Fail"]',
        '  step_1st["1st<br/>Fail"]',
    ]


def test_rendering_is_deterministic_and_independent_of_key_order() -> None:
    text = graph.mermaid(json.dumps(SYNTHETIC))

    assert graph.mermaid(json.dumps(SYNTHETIC, sort_keys=True)) == text
    assert graph.mermaid(json.dumps(copy.deepcopy(SYNTHETIC), indent=2)) == text


@pytest.fixture(scope="module")
def dev_graphs(definitions_of) -> dict[str, str]:
    return readme_graphs.pipeline_graphs(definitions_of(DEV))


def test_dev_graphs_show_the_gates_and_what_is_cached(dev_graphs: dict[str, str]) -> None:
    training, evaluation = dev_graphs["training"].splitlines(), dev_graphs["evaluation"].splitlines()

    assert "  CandidateNotWorse -->|true| RegisterModel" in training
    assert "  CandidateNotWorse -->|false| RejectCandidate" in training
    assert '  ResolveIncumbent["ResolveIncumbent<br/>Processing"]' in training
    assert "  class Preprocess,Train,Evaluate,Score,Baseline cached" in training
    assert "  ModelHealthy -->|false| ModelUnhealthy" in evaluation
    assert not [line for line in evaluation if "cached" in line]
    scoring = dev_graphs["scoring"].splitlines()
    assert "  CreateModel --> Transform" in scoring and "  Transform --> Summarize" in scoring
    assert "  NoDrift -->|false| DriftDetected" in scoring
    assert not [line for line in scoring if "cached" in line]


def test_graphs_do_not_depend_on_code_asset_uris(dev_graphs: dict[str, str]) -> None:
    from pipeline_defs.definitions import build_definitions
    from pipeline_defs.packaging import content_addressed_uris

    other = build_definitions(
        DEV, {name: uri.replace("cdk-", "other-") for name, uri in content_addressed_uris("cdk-x").items()}
    )

    graphs = readme_graphs.pipeline_graphs({kind: other[name] for kind, name in DEV.pipeline_names().items()})
    assert graphs == dev_graphs


def test_readme_graphs_are_up_to_date(dev_graphs: dict[str, str]) -> None:
    readme = readme_graphs.README.read_text()

    assert readme_graphs.with_graphs(readme, dev_graphs) == readme, (
        f"the pipeline graphs in README.md are stale: run `{readme_graphs.UPDATE_COMMAND}`"
    )


def readme_parameter_tables() -> list[dict[str, str]]:
    """{parameter: type} of each table in the README's "The pipelines" section, in order."""
    section = readme_graphs.README.read_text().split("\n## The pipelines\n")[1].split("\n## ")[0]
    tables: list[dict[str, str]] = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "parameter":
            tables.append({})
        elif line.startswith("| `"):
            tables[-1][cells[0].strip("`")] = cells[1]
    return tables


def test_readme_parameter_tables_list_each_pipelines_parameters(definitions_of) -> None:
    definitions = definitions_of(DEV)
    declared = [json.loads(definitions[pipeline])["Parameters"] for pipeline in graph.PIPELINES]

    assert readme_parameter_tables() == [{p["Name"]: p["Type"] for p in parameters} for parameters in declared]


@pytest.fixture
def readme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in README with stale graphs; the CLI renders the synthetic definition for both pipelines."""
    path = tmp_path / "README.md"
    path.write_text(
        "# Title\n\n"
        "<!-- pipeline-graph:training:start -->\nold\n<!-- pipeline-graph:training:end -->\n\ntext\n\n"
        "<!-- pipeline-graph:evaluation:start -->\n<!-- pipeline-graph:evaluation:end -->\n"
    )
    monkeypatch.setattr(readme_graphs, "README", path)
    synthetic = json.dumps(SYNTHETIC)
    monkeypatch.setattr(
        readme_graphs,
        "dev_graphs",
        lambda: readme_graphs.pipeline_graphs({"training": synthetic, "evaluation": synthetic}),
    )
    return path


def test_cli_check_fails_on_a_stale_readme_and_update_fixes_it(readme: Path, capsys: pytest.CaptureFixture) -> None:
    assert readme_graphs.main(["--check"]) == 1
    assert readme_graphs.UPDATE_COMMAND == ".venv/bin/python -m tools.readme_graphs --update-readme"
    assert f"run `{readme_graphs.UPDATE_COMMAND}`" in capsys.readouterr().err

    assert readme_graphs.main(["--update-readme"]) == 0
    updated = readme.read_text()
    block = f"```mermaid\n{graph.mermaid(json.dumps(SYNTHETIC))}```"
    assert updated == (
        "# Title\n\n"
        f"<!-- pipeline-graph:training:start -->\n{block}\n<!-- pipeline-graph:training:end -->\n\ntext\n\n"
        f"<!-- pipeline-graph:evaluation:start -->\n{block}\n<!-- pipeline-graph:evaluation:end -->\n"
    )
    assert readme_graphs.main(["--check"]) == 0
    assert readme_graphs.main(["--update-readme"]) == 0
    assert readme.read_text() == updated


def test_cli_reports_missing_markers(readme: Path, capsys: pytest.CaptureFixture) -> None:
    readme.write_text(readme.read_text().replace("<!-- pipeline-graph:evaluation:end -->", ""))

    assert readme_graphs.main(["--check"]) == 2
    assert capsys.readouterr().err == (
        "error: README needs exactly one '<!-- pipeline-graph:evaluation:start -->' followed by one "
        "'<!-- pipeline-graph:evaluation:end -->'\n"
    )


def test_cli_prints_both_graphs_without_flags(readme: Path, capsys: pytest.CaptureFixture) -> None:
    assert readme_graphs.main([]) == 0

    output = capsys.readouterr().out
    assert output.startswith("%% training\nflowchart TD\n")
    assert "\n%% evaluation\nflowchart TD\n" in output
