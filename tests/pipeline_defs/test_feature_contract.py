"""The feature contract, enforced by the step scripts on datasets generated here (nothing committed).

Each class of bad input once: undeclared columns, missing and mistyped columns, out-of-range and non-finite values
under both policies, a leaking feature, a near-perfect model, an invalid contract; the stable hash split over
cumulative snapshots (whole row and declared row key); every JSON report parses as strict JSON.
The scripts run in-process through their `main` (one import of pandas and scikit-learn for all).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from tests.helpers import load_module

REPO_ROOT = Path(__file__).resolve().parents[2]
STEPS = REPO_ROOT / "pipeline_defs" / "steps"
CONTRACT = json.loads((STEPS / "feature_contract.json").read_text())
LABEL = CONTRACT["label"]
FEATURES = [feature["name"] for feature in CONTRACT["features"]]


generate = load_module("sample_generate", REPO_ROOT / "pipeline_defs" / "sample_data" / "generate.py")
preprocess = load_module("contract_preprocess", STEPS / "preprocess.py")
train = load_module("contract_train", STEPS / "train.py")
data_quality = load_module("contract_data_quality", STEPS / "data_quality.py")
inference = load_module("contract_inference", STEPS / "inference.py")


def strict_json(path: Path) -> dict:
    """JSON as the standard defines it: NaN and Infinity are errors."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{path} holds the non-standard JSON constant {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def customers(rows: int, seed: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        generate.customers(np.random.default_rng(seed), rows, drifted=False), columns=generate.COLUMNS
    ).astype(str)


def write_csv(frame: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "part-0000.csv", index=False)
    return folder


def write_contract(folder: Path, **changes) -> Path:
    contract = copy.deepcopy(CONTRACT) | changes
    path = folder / "contract" / "feature_contract.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(contract))
    return path.parent  # the pipeline mounts a folder holding the one contract file


def run(module: ModuleType, *args: object, capsys: pytest.CaptureFixture[str], expect: int = 0) -> str:
    """Runs a step's main in-process; returns its stderr, which is one `error:` line when it fails."""
    code = module.main([str(arg) for arg in args])
    stderr = capsys.readouterr().err
    assert code == expect, stderr
    if expect:
        assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
    return stderr


def prepare(tmp_path: Path, frame: pd.DataFrame, capsys, *options: object, expect: int = 0) -> str:
    return run(
        preprocess,
        *("--input-dir", write_csv(frame, tmp_path / "raw"), "--output-dir", tmp_path / "out", *options),
        capsys=capsys,
        expect=expect,
    )


def report(tmp_path: Path) -> dict:
    return strict_json(tmp_path / "out" / "report" / "preprocess_report.json")


def test_the_shipped_contract_is_valid_and_declares_the_sample_columns() -> None:
    preprocess.check_contract(CONTRACT)
    assert [*FEATURES, LABEL] == generate.COLUMNS


def test_undeclared_columns_are_dropped_and_reported_never_trained_on(tmp_path: Path, capsys) -> None:
    frame = customers(1500)
    frame.insert(0, "customer_id", [f"c{i}" for i in range(len(frame))])
    frame["notes"] = "called about the bill"
    frame["churned_copy"] = frame[LABEL]
    prepare(tmp_path, frame, capsys)

    assert report(tmp_path)["unknown_columns_dropped"] == ["customer_id", "notes", "churned_copy"]
    for part in ("train", "validation", "test"):
        assert list(pd.read_csv(tmp_path / "out" / part / f"{part}.csv").columns) == [*FEATURES, LABEL]
    run(
        train,
        *("--train", tmp_path / "out" / "train", "--validation", tmp_path / "out" / "validation"),
        *("--model-dir", tmp_path / "model", "--output-data-dir", tmp_path / "metrics", "--n-estimators", 20),
        capsys=capsys,
    )
    model = train.joblib.load(tmp_path / "model" / "model.joblib")
    assert list(model.feature_names_in_) == FEATURES
    assert strict_json(tmp_path / "metrics" / "metrics.json")["validation_roc_auc"] < 0.95  # no copy of the label


def test_a_missing_declared_column_fails_naming_it(tmp_path: Path, capsys) -> None:
    error = prepare(tmp_path, customers(300).drop(columns=["support_calls"]), capsys, expect=1)
    assert "['support_calls'] of the feature contract are missing from the data (300 rows)" in error


def test_a_mistyped_column_fails_naming_it_and_its_offending_row_count(tmp_path: Path, capsys) -> None:
    """30 % text in a number column: once silently a category, now a failure."""
    frame = customers(1000)
    frame.loc[:299, "monthly_charges"] = "n/a"
    error = prepare(tmp_path, frame, capsys, expect=1)
    assert "300 of 1000 rows (30.0%) break the feature contract, max_share 5.0%" in error
    assert "monthly_charges: 300 rows not a number" in error


def test_out_of_range_and_non_finite_values_are_dropped_and_reported(tmp_path: Path, capsys) -> None:
    frame = customers(1500)
    frame.loc[0, "monthly_charges"] = "1e30"  # once blinded drift detection on its feature
    frame.loc[1, "total_charges"] = "1e309"  # once wrote Infinity into statistics.json
    frame.loc[2, "total_charges"] = "inf"
    frame.loc[3, "tenure_months"] = "nan"
    frame.loc[4, "tenure_months"] = "2.5"
    frame.loc[5, "contract"] = "three-year"
    frame.loc[6, "support_calls"] = "-1"
    prepare(tmp_path, frame, capsys)

    found = report(tmp_path)
    assert found["invalid_values"] == {
        "monthly_charges": {"outside [0, 10000]": 1},
        "total_charges": {"non-finite": 2},
        "tenure_months": {"non-finite": 1, "not an integer": 1},
        "contract": {"not a declared category": 1},
        "support_calls": {"outside [0, 1000]": 1},
    }
    assert found["invalid_rows_dropped"] == 7
    assert sum(found["rows_written"].values()) == 1500 - found["duplicate_rows_dropped"] - 7

    # The baseline of what is left is finite: standard JSON, and the outlier no longer squeezes the buckets.
    run(
        data_quality,
        "baseline",
        "--data-dir",
        tmp_path / "out" / "test",
        "--output-dir",
        tmp_path / "bl",
        capsys=capsys,
    )
    statistics = strict_json(tmp_path / "bl" / "statistics.json")
    charges = next(f for f in statistics["features"] if f["name"] == "monthly_charges")
    assert charges["numerical_statistics"]["max"] < 200
    strict_json(tmp_path / "bl" / "constraints.json")


def test_too_many_invalid_rows_fail_and_the_fail_policy_allows_none(tmp_path: Path, capsys) -> None:
    frame = customers(1000)
    frame.loc[:79, "tenure_months"] = "-5"
    error = prepare(tmp_path / "share", frame, capsys, expect=1)
    assert "80 of 1000 rows (8.0%) break the feature contract, max_share 5.0%: tenure_months: 80 rows outside" in error

    strict = write_contract(tmp_path, invalid_values={"policy": "fail", "max_share": 0.0})
    error = prepare(tmp_path / "fail", frame.iloc[78:], capsys, "--contract", strict, expect=1)
    assert "2 of 922 rows (0.2%) break the feature contract, none allowed (policy fail)" in error


def test_invalid_labels_count_against_the_invalid_values_policy(tmp_path: Path, capsys) -> None:
    """80 % invalid labels once left a fifth of the data to train on, and the model was registered Approved."""
    frame = customers(1000)
    invalid = frame.index[frame.index % 5 != 0]  # 800 of 1000
    frame.loc[invalid, LABEL] = np.where(invalid % 2 == 0, "yes", "2")
    error = prepare(tmp_path / "most", frame, capsys, expect=1)
    assert "800 of 1000 rows (80.0%) break the feature contract, max_share 5.0%" in error
    assert f"{LABEL}: 400 rows not a number; {LABEL}: 400 rows outside [0, 1]" in error
    assert not (tmp_path / "most" / "out").exists()

    few = customers(1000)
    few.loc[:19, LABEL] = "yes"  # 2 %, within max_share
    few.loc[20:29, LABEL] = ""  # a training row needs its label: missing counts as invalid
    prepare(tmp_path / "few", few, capsys)
    found = report(tmp_path / "few")
    assert found["invalid_values"] == {LABEL: {"missing (not nullable)": 10, "not a number": 20}}
    assert found["invalid_rows_dropped"] == found["invalid_label_rows_dropped"] == 30
    assert sum(found["rows_written"].values()) == 1000 - found["duplicate_rows_dropped"] - 30

    strict = write_contract(tmp_path, invalid_values={"policy": "fail", "max_share": 0.0})
    error = prepare(tmp_path / "strict", few, capsys, "--contract", strict, expect=1)
    assert "30 of 1000 rows (3.0%) break the feature contract, none allowed (policy fail)" in error


def test_a_non_nullable_feature_drops_rows_missing_it(tmp_path: Path, capsys) -> None:
    contract = copy.deepcopy(CONTRACT)
    contract["features"][0]["nullable"] = False
    folder = write_contract(tmp_path, features=contract["features"])
    frame = customers(1000)
    frame.loc[:9, "tenure_months"] = ""
    prepare(tmp_path, frame, capsys, "--contract", folder)
    assert report(tmp_path)["invalid_values"] == {"tenure_months": {"missing (not nullable)": 10}}


def test_a_feature_that_alone_predicts_the_label_fails_as_a_leak(tmp_path: Path, capsys) -> None:
    features = [*CONTRACT["features"], {"name": "cancel_reason_code", "type": "integer", "nullable": True}]
    folder = write_contract(tmp_path, features=features)
    frame = customers(1000)
    frame["cancel_reason_code"] = frame[LABEL]
    error = prepare(tmp_path, frame, capsys, "--contract", folder, expect=1)
    assert "suspected label leak: feature 'cancel_reason_code' alone predicts 'churned' with roc_auc 1.0000" in error


def test_a_near_perfect_model_fails_as_a_leak_naming_its_strongest_feature(tmp_path: Path, capsys) -> None:
    """The sample's model reaches ~0.8 with no single feature above ~0.72: a threshold between trips the model check."""
    folder = write_contract(tmp_path, leak_threshold=0.75)
    prepare(tmp_path, customers(2000), capsys, "--contract", folder)
    error = run(
        train,
        *("--train", tmp_path / "out" / "train", "--validation", tmp_path / "out" / "validation"),
        *("--contract", folder, "--model-dir", tmp_path / "model", "--output-data-dir", tmp_path / "metrics"),
        capsys=capsys,
        expect=1,
    )
    assert "suspected label leak: validation roc_auc 0." in error
    assert "reaches leak_threshold 0.75; the model relies most on feature 'contract'" in error
    assert not (tmp_path / "model" / "model.joblib").exists()


def test_a_leaking_column_is_named_by_its_permutation_importance(tmp_path: Path, capsys) -> None:
    """A column recorded after the outcome (the label with 10 % of it flipped), declared between real features: Train's
    model leans on it, reaches the leak threshold, and the check names it, not the strongest honest feature."""
    features = [*CONTRACT["features"][:3], {"name": "retention_offer_code", "type": "integer", "nullable": True}]
    folder = write_contract(tmp_path, features=[*features, *CONTRACT["features"][3:]], leak_threshold=0.85)
    frame = customers(2000).astype({LABEL: int})
    flipped = np.random.default_rng(7).random(len(frame)) < 0.1
    frame["retention_offer_code"] = np.where(flipped, 1 - frame[LABEL], frame[LABEL])
    for part, rows in (("train", frame[:1500]), ("validation", frame[1500:])):
        write_csv(rows, tmp_path / part)
    error = run(
        train,
        *("--train", tmp_path / "train", "--validation", tmp_path / "validation", "--contract", folder),
        *("--model-dir", tmp_path / "model", "--output-data-dir", tmp_path / "metrics"),
        capsys=capsys,
        expect=1,
    )
    assert "reaches leak_threshold 0.85; the model relies most on feature 'retention_offer_code'" in error
    assert not (tmp_path / "model" / "model.joblib").exists()


def test_importances_are_measured_on_a_bounded_seeded_sample_of_the_validation_rows() -> None:
    """At most IMPORTANCE_ROWS rows whatever the data size (the leak check's cost is bounded), the same for a seed."""
    rows = train.importance_rows(20_000, 42)
    assert len(rows) == 5_000 and np.all(np.diff(rows) > 0) and rows[0] >= 0 and rows[-1] < 20_000
    assert np.array_equal(rows, train.importance_rows(20_000, 42))
    assert not np.array_equal(rows, train.importance_rows(20_000, 43))
    assert np.array_equal(train.importance_rows(300, 42), np.arange(300))  # a smaller slice: every row


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"leak_threshold": 0.4}, "leak_threshold must be above 0.5"),
        ({"invalid_values": {"policy": "ignore", "max_share": 0.1}}, "invalid_values needs a policy of"),
        ({"features": [{"name": "churned", "type": "integer", "nullable": True}]}, "the label not among them"),
        ({"features": [{"name": "x", "type": "text", "nullable": True}]}, "feature x: type must be one of"),
        ({"features": [{"name": "x", "type": "number", "min": 2, "max": 1, "nullable": True}]}, "min must not exceed"),
        ({"row_key": None}, "feature contract feature_contract.json is invalid"),
    ],
)
def test_an_invalid_contract_fails_with_one_line(tmp_path: Path, capsys, change: dict, message: str) -> None:
    error = prepare(tmp_path, customers(200), capsys, "--contract", write_contract(tmp_path, **change), expect=1)
    assert message in error


def splits(folder: Path) -> dict[str, str]:
    """{row key hash: split} of a preprocessed output (row_keys.txt, or one row_keys-<host>.txt per instance)."""
    return {
        key: part
        for part in ("train", "validation", "test")
        for keys in sorted((folder / part).glob("row_keys*.txt"))
        for key in keys.read_text().split()
    }


def rows_of(folder: Path, part: str) -> list[tuple]:
    """Every row of a split, whichever instance wrote it, in a fixed order."""
    frames = [pd.read_csv(path, dtype=str) for path in sorted((folder / part).glob("*.csv"))]
    return sorted(pd.concat(frames).itertuples(index=False, name=None))


def prepare_as_instances(tmp_path: Path, files: list[pd.DataFrame], hosts: int, capsys, monkeypatch) -> Path:
    """preprocess.py run as each of the `hosts` instances of one job on its share of the files (every hosts-th file,
    as the local runner shards ShardedByS3Key), every instance's outputs in one folder, as S3 would hold them."""
    names = [f"algo-{number}" for number in range(1, hosts + 1)]
    output = tmp_path / f"{hosts}-instances"
    for index, host in enumerate(names):
        share = tmp_path / f"{hosts}-{host}" / "data"
        share.mkdir(parents=True)
        for number, frame in list(enumerate(files))[index::hosts]:
            frame.to_csv(share / f"part-{number}.csv", index=False)
        resource_config = share.parent / "resourceconfig.json"
        resource_config.write_text(json.dumps({"current_host": host, "hosts": names}))
        monkeypatch.setenv(preprocess.RESOURCE_CONFIG_VARIABLE, str(resource_config))
        run(preprocess, "--input-dir", share, "--output-dir", output, capsys=capsys)
    return output


def test_the_split_is_the_same_whatever_the_number_of_instances(tmp_path: Path, capsys, monkeypatch) -> None:
    files = [customers(900, seed=seed) for seed in (31, 32, 33, 34)]
    alone = prepare_as_instances(tmp_path, files, 1, capsys, monkeypatch)
    sharded = prepare_as_instances(tmp_path, files, 3, capsys, monkeypatch)

    assert sorted(path.name for path in (sharded / "train").iterdir()) == [
        *(f"row_keys-algo-{n}.txt" for n in (1, 2, 3)),
        *(f"train-algo-{n}.csv" for n in (1, 2, 3)),
    ]
    assert (alone / "train" / "train.csv").is_file()  # one instance: the names every reader knows
    assert len(splits(alone)) == 3600 and splits(sharded) == splits(alone)
    for part in ("train", "validation", "test"):
        assert rows_of(sharded, part) == rows_of(alone, part), part
    reports = sorted((sharded / "report").glob("preprocess_report-algo-*.json"))
    assert [strict_json(path)["rows_read"] for path in reports] == [1800, 900, 900]  # files 0+3, 1, 2


def test_an_instance_whose_share_holds_no_file_writes_only_its_report(tmp_path: Path, capsys, monkeypatch) -> None:
    output = prepare_as_instances(tmp_path, [customers(900, seed=35)], 2, capsys, monkeypatch)

    assert (output / "train" / "train-algo-1.csv").is_file()
    assert not list(output.glob("*/*algo-2*.csv"))
    assert strict_json(output / "report" / "preprocess_report-algo-2.json")["instance"] == ["algo-2", 2]


def test_rows_keep_their_split_across_cumulative_snapshots(tmp_path: Path, capsys) -> None:
    older = customers(1500, seed=11)
    newer = pd.concat([older, customers(1500, seed=12)]).sample(frac=1, random_state=0)  # a later, bigger snapshot
    prepare(tmp_path / "v1", older, capsys)
    prepare(tmp_path / "v2", newer, capsys)

    first, second = splits(tmp_path / "v1" / "out"), splits(tmp_path / "v2" / "out")
    assert len(first) > 1400 and first.items() <= second.items()  # every old row: the same split in the new one
    assert {part: list(second.values()).count(part) / len(second) for part in ("test", "validation")} == {
        "test": pytest.approx(0.2, abs=0.03),
        "validation": pytest.approx(0.2, abs=0.03),
    }


def test_a_declared_row_key_fixes_the_split_even_when_the_rows_features_change(tmp_path: Path, capsys) -> None:
    folder = write_contract(tmp_path, row_key=["customer_id"])
    older = customers(1200, seed=21)
    older.insert(0, "customer_id", [f"customer-{i}" for i in range(len(older))])
    newer = older.copy()
    newer["tenure_months"] = (newer["tenure_months"].astype(int) + 1).astype(str)  # a month later
    prepare(tmp_path / "v1", older, capsys, "--contract", folder)
    prepare(tmp_path / "v2", newer, capsys, "--contract", folder)

    assert splits(tmp_path / "v1" / "out") == splits(tmp_path / "v2" / "out")
    assert "customer_id" not in pd.read_csv(tmp_path / "v1" / "out" / "train" / "train.csv").columns
    assert report(tmp_path / "v1")["split"]["row_key"] == ["customer_id"]


def test_statistics_that_would_not_be_finite_fail_naming_the_feature(tmp_path: Path, capsys) -> None:
    features = copy.deepcopy(CONTRACT["features"])
    features[1]["max"] = 1.7e308  # a contract that allows huge values: their sum overflows
    folder = write_contract(tmp_path, features=features)
    frame = customers(50)
    frame["monthly_charges"] = "1e308"
    error = run(
        data_quality,
        *("baseline", "--data-dir", write_csv(frame, tmp_path / "data"), "--contract", folder),
        *("--output-dir", tmp_path / "baseline"),
        capsys=capsys,
        expect=1,
    )
    assert "feature 'monthly_charges' has no finite statistics" in error


def test_inference_reads_a_headerless_row_in_contract_order(tmp_path: Path, capsys) -> None:
    prepare(tmp_path, customers(1500), capsys)
    run(
        train,
        *("--train", tmp_path / "out" / "train", "--validation", tmp_path / "out" / "validation"),
        *("--model-dir", tmp_path / "model", "--output-data-dir", tmp_path / "metrics", "--n-estimators", 20),
        capsys=capsys,
    )
    model = inference.model_fn(str(tmp_path / "model"))
    row = customers(1, seed=99).drop(columns=[LABEL])
    expected = model.predict_proba(row.astype({f: float for f in FEATURES if f not in inference.categories()}))[:, 1]
    body = ",".join(row.iloc[0]) + "\n"
    assert inference.predict_fn(inference.input_fn(body, "text/csv"), model) == pytest.approx(expected)
    with pytest.raises(
        ValueError, match=r"expected 7 columns \(the features \['tenure_months', .*\] in this order\), got 8"
    ):
        inference.input_fn(body.strip() + ",1\n", "text/csv")
    with pytest.raises(ValueError, match="feature tenure_months must be a number"):
        inference.predict_fn(inference.input_fn("n/a" + body[body.index(",") :], "text/csv"), model)


@pytest.mark.parametrize("seed", range(5))
def test_preprocess_single_feature_roc_auc_is_scikit_learns(seed: int) -> None:
    """Preprocess ranks without scikit-learn (its import costs the step ~1.6 s); the value must be roc_auc_score's,
    ties and categories included."""
    from sklearn.metrics import roc_auc_score

    preprocess = load_module(f"preprocess_auc_{seed}", STEPS / "preprocess.py")
    rng = np.random.default_rng(seed)
    labels = pd.Series(rng.integers(0, 2, 500))
    tied = pd.Series(rng.integers(0, 7, 500).astype(float))  # many ties
    continuous = pd.Series(rng.normal(size=500) + labels * 0.3)
    for values in (tied, continuous):
        assert preprocess.roc_auc(labels, values) == pytest.approx(roc_auc_score(labels, values), abs=1e-12)
    category = pd.Series(rng.choice(["a", "b", "c"], 500))
    expected = roc_auc_score(labels, category.map(labels.groupby(category).mean()))
    assert preprocess.single_feature_roc_auc(category, labels) == pytest.approx(max(expected, 1 - expected), abs=1e-12)
    with pytest.raises(preprocess.StepError, match="needs both label values"):
        preprocess.roc_auc(pd.Series([1, 1, 1]), pd.Series([0.1, 0.2, 0.3]))
