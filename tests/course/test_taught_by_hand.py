"""Each kind of resource is created by a boto3 call the learner reads and runs, in the notebook
where it first appears (issue 14); later notebooks re-create it with ecomlib in one cell.

``TAUGHT`` maps each create call (``<client variable>.<method>``, as the notebooks name their
clients) to that notebook. ``BY_HAND`` lists the notebooks already built this way: in them no
cell prints library source, every exercise's checker reads the resource back through the AWS
API, and every cell that creates or configures a resource carries ``costs-money``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"

TAUGHT = {
    "kinesis.create_stream": "02_connect_and_buffer",
    "iam.create_role": "02_connect_and_buffer",
    "iam.put_role_policy": "02_connect_and_buffer",
    "lam.create_function": "02_connect_and_buffer",
    "logs.create_log_group": "02_connect_and_buffer",
    "lam.add_permission": "02_connect_and_buffer",
    "apigw.create_rest_api": "02_connect_and_buffer",
    "apigw.create_resource": "02_connect_and_buffer",
    "apigw.put_method": "02_connect_and_buffer",
    "apigw.put_integration": "02_connect_and_buffer",
    "apigw.create_deployment": "02_connect_and_buffer",
    "s3.create_bucket": "03_stream_to_raw_storage",
    "sqs.create_queue": "03_stream_to_raw_storage",
    "lam.create_event_source_mapping": "03_stream_to_raw_storage",
    "ddb.create_table": "04_stream_to_dynamodb",
    "ec2.create_security_group": "06_warehouse",
    "ec2.authorize_security_group_ingress": "06_warehouse",
    "redshift.create_cluster": "06_warehouse",
    "firehose.create_delivery_stream": "06_warehouse",
    "events.put_rule": "08_batch_vs_stream",
    "events.put_targets": "08_batch_vs_stream",
}
# Every notebook from 02 on builds its resources by hand where they first appear, with an exercise that builds.
BY_HAND = ("00_welcome", "02_connect_and_buffer", "03_stream_to_raw_storage", "04_stream_to_dynamodb",
           "05_visualization_api", "06_warehouse", "07_dashboards", "08_batch_vs_stream", "09_going_to_production")

CREATES = re.compile(r"\b(deploy|deploy_all|deploy_function|deploy_stage|ensure_[a-z_]+|add_lambda_route|create_[a-z_]+|"
                     r"put_role_policy|put_method|put_integration|add_permission|put_retention_policy|put_rule|"
                     r"put_targets)\("
                     r"|\bCREATE (?:OR REPLACE )?(?:MATERIALIZED )?VIEW\b")  # SQL that the Data API runs
PRINTS_SOURCE = re.compile(r"\bimport (ast|inspect)\b|getsource|get_docstring")
READS_BACK = re.compile(r"\.(get_|describe_|list_|head_)\w+\(")


def code_cells(stem: str) -> list[dict]:
    notebook = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text())
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def tags(cell: dict) -> list[str]:
    return cell["metadata"].get("tags", [])


@pytest.mark.parametrize("call", sorted(TAUGHT))
def test_each_kind_of_resource_is_created_by_a_call_the_learner_runs(call):
    """In an ordinary code cell (not an exercise's solution, not markdown) of its notebook."""
    cells = [c for c in code_cells(TAUGHT[call]) if "solution" not in tags(c)]
    assert [c for c in cells if f"{call}(" in source(c)], f"no code cell of {TAUGHT[call]} runs {call}"


@pytest.mark.parametrize("stem", BY_HAND)
def test_no_cell_prints_library_source(stem):
    for number, cell in enumerate(code_cells(stem)):
        assert not PRINTS_SOURCE.search(source(cell)), f"{stem}, code cell {number}: run the code or link the file"


@pytest.mark.parametrize("stem", BY_HAND)
def test_a_build_exercise_whose_checker_reads_the_resource_back(stem):
    """A solution that creates or configures something, and a checker that asks AWS about it."""
    cells = code_cells(stem)
    builds = [c for c in cells if "solution" in tags(c) and CREATES.search(source(c))]
    assert builds, f"{stem}: no exercise writes a create or configure call"
    checkers = [source(c) for c in cells if re.search(r"^@checker\ndef check_\w+", source(c), re.M)]
    assert [text for text in checkers if READS_BACK.search(text)], f"{stem}: no checker reads a resource back"


@pytest.mark.parametrize("stem", BY_HAND)
def test_every_cell_that_creates_or_configures_carries_costs_money(stem):
    for number, cell in enumerate(code_cells(stem)):
        text = source(cell)
        if CREATES.search(text) and "teardown" not in text and "@checker" not in text:
            assert "costs-money" in tags(cell), f"{stem}, code cell {number}"


@pytest.mark.parametrize("stem", BY_HAND)
def test_no_test_harness_asides_for_learners(stem):
    """Cell tags tell nbval what to ignore; the learner sees neither comments nor "the tests skip"."""
    notebook = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text())
    for number, cell in enumerate(notebook["cells"]):
        text = source(cell)
        assert "NBVAL_" not in text, f"{stem}, cell {number}: use the nbval-ignore-output tag"
        assert not re.search(r"\bthe (course's )?(automatic )?tests\b", text), f"{stem}, cell {number}"
