"""``fastnn bench``: the quick run works end to end; the report, targets and comparison read the JSON right."""

import copy
import json
import subprocess
import sys

import pytest

from fastnn.benchmarks import command
from fastnn.benchmarks.workloads import WORKLOADS


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One real ``fastnn bench --quick`` run (the smoke test the issue asks for)."""
    path = tmp_path_factory.mktemp("bench") / "quick.json"
    completed = subprocess.run([sys.executable, "-m", "fastnn", "bench", "--quick", "--json", str(path)],
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout, json.loads(path.read_text())


@pytest.mark.slow
def test_quick_run_has_every_workload_measured(quick_run):
    stdout, run = quick_run
    assert [row["name"] for row in run["rows"]] == list(WORKLOADS)
    for row in run["rows"]:
        if "skipped" in row:
            assert WORKLOADS[row["name"]].needs_dataset
            continue
        for impl in WORKLOADS[row["name"]].builders:
            if impl == "torch" and run["environment"]["torch"] is None:
                continue
            result = row["impls"][impl]
            assert len(result["samples"]) == command.QUICK["repeats"]
            assert result["min"] <= result["median"] <= result["max"]
            assert result["median"] > 0
        assert row["title"] in stdout
    assert run["compile"]["cold"]["seconds"] > 0 and run["compile"]["warm"]["seconds"] > 0
    assert run["environment"]["cores"] >= 1 and run["environment"]["numba"]


def _row(fastnn, python=None, torch=None, targets=()):
    impls = {"fastnn": {"median": fastnn, "min": fastnn, "max": fastnn, "samples": [fastnn]}}
    if python is not None:
        impls["python"] = {"median": python, "min": python, "max": python, "samples": [python]}
    if torch is not None:
        impls["torch"] = {"median": torch, "min": torch, "max": torch, "samples": [torch], "threads": 1}
    return {"name": "w", "title": "w", "unit": "samples", "impls": impls,
            "targets": [{"against": a, "speedup": s, "source": "issue"} for a, s in targets]}


def test_speedups_and_targets():
    row = _row(2000.0, python=2.0, torch=400.0, targets=[("python", 500), ("torch", 10)])
    assert command.speedup(row, "python") == 1000.0
    assert command.speedup(row, "torch") == 5.0
    status = command.target_status(row)
    assert ">= 500x python: met" in status
    assert ">= 10x torch: MISSED (5.00x, 50% of goal)" in status
    assert command.target_status(_row(1.0, targets=[("torch", 1)])) == ">= 1x torch: not measured"


@pytest.mark.slow
def test_compare_reports_the_change_per_row(quick_run):
    _, run = quick_run
    old = copy.deepcopy(run)
    first = next(row for row in old["rows"] if "fastnn" in row.get("impls", {}))
    first["impls"]["fastnn"]["median"] *= 2
    text = command.compare(run, old)
    assert f"{first['title']}: fastnn -50.0%" in text


@pytest.mark.slow
def test_markdown_report_from_json(quick_run, tmp_path, capsys):
    _, run = quick_run
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    args = command_args(report=str(path), markdown=True)
    assert command.run(args) == 0
    out = capsys.readouterr().out
    assert "| workload | unit/s |" in out
    assert out.count("\n| ") == len(run["rows"]) + 1


def command_args(**overrides):
    import argparse

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args([])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def test_unknown_workload_is_refused(capsys):
    assert command.run(command_args(only=["no-such-workload"])) == 2
    assert "unknown workload(s) no-such-workload" in capsys.readouterr().err
