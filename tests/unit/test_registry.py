"""Every pipeline is declared once, completely (``ecomlib.registry``): these tests fail
when a declaration misses a part, or disagrees with the code, the template or the diagram."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ecomlib import cost, infra, preflight, registry, viz

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = (ROOT / "infra" / "template.yaml").read_text()
PIPELINES = {p.name: p for p in registry.PIPELINES}
FUNCTIONS = {f.folder: f for f in registry.functions()}


def _template_block(line: str) -> str:
    """The template resource (indented block) holding ``line``."""
    at = TEMPLATE.index(line)
    start = TEMPLATE.rindex("\n  ", 0, at)
    found = re.search(r"\n  [A-Za-z]", TEMPLATE[at:])
    return TEMPLATE[start:at + found.start()] if found else TEMPLATE[start:]


def test_pipelines_are_numbered_in_order_with_unique_names():
    assert [p.number for p in registry.PIPELINES] == list(range(1, len(registry.PIPELINES) + 1))
    assert len(PIPELINES) == len(registry.PIPELINES)
    assert len(FUNCTIONS) == len(registry.functions())


@pytest.mark.parametrize("name", PIPELINES)
def test_each_pipeline_has_its_module_notebook_cost_and_diagram(name):
    pipeline = PIPELINES[name]
    assert callable(pipeline.module.deploy) and callable(pipeline.module.teardown)
    assert (ROOT / "notebooks" / pipeline.notebook).exists()
    assert pipeline.bills and set(pipeline.bills) <= set(cost.SERVICES)
    assert pipeline.diagram.title and re.fullmatch(r"#[0-9a-f]{6}", pipeline.diagram.colour)
    assert pipeline.diagram.edges, "a pipeline draws at least one arrow"
    for start, end, _ in pipeline.diagram.edges:
        assert start in viz.BOXES and end in viz.BOXES
    assert 0 <= pipeline.diagram.badge_at <= 1
    assert pipeline.fed_by in ("client", "stream", "files")
    assert pipeline.functions or pipeline.resources


@pytest.mark.parametrize("name", PIPELINES)
def test_a_pipeline_that_stores_rows_says_how_to_count_them(name):
    pipeline = PIPELINES[name]
    assert bool(pipeline.stores) == bool(pipeline.count)
    if pipeline.count:
        assert callable(getattr(pipeline.module, pipeline.count))
    created = [(r.kind, r.name) for r in pipeline.resources]
    if pipeline.count:
        assert (pipeline.stores.kind, pipeline.stores.name) in created
    if pipeline.dead_letter_queue:
        assert ("SQS queues", pipeline.dead_letter_queue) in created
    for mapping in pipeline.mappings:
        assert mapping.function in [f.folder for f in pipeline.functions]
        assert pipeline.dead_letter_queue, "a stream mapping sends what it gives up on to a dead-letter queue"


@pytest.mark.parametrize("folder", FUNCTIONS)
def test_each_function_has_its_handler_and_reads_its_settings(folder):
    function = FUNCTIONS[folder]
    code = ROOT / "lambda_src" / folder
    assert (code / "handler.py").exists(), f"lambda_src/{folder}/handler.py"
    source = "\n".join(p.read_text() for p in [*code.rglob("*.py"), *(ROOT / "lambda_src" / "shared").rglob("*.py")])
    for setting in function.settings:
        assert setting in source, f"{folder} is declared to read {setting}"
    assert function.memory_mb >= 128 and 1 <= function.timeout_s <= 900
    assert function.ms_per_invocation > 0 and function.ms_per_item >= 0


def test_every_handler_folder_is_declared():
    folders = {p.name for p in (ROOT / "lambda_src").iterdir() if (p / "handler.py").exists()}
    assert folders == set(FUNCTIONS)


@pytest.mark.parametrize("folder", FUNCTIONS)
def test_the_template_declares_each_function_as_the_registry_does(folder):
    function = FUNCTIONS[folder]
    block = _template_block(f'FunctionName: !Sub "${{Prefix}}-{function.name}"')
    assert f"Timeout: {function.timeout_s}\n" in block
    assert f"Runtime: {registry.LAMBDA_RUNTIME}\n" in block
    assert f"MemorySize: {function.memory_mb}\n" in block
    variables = set(re.findall(r"^          ([A-Z_]+):", block, re.M))
    assert set(function.settings) <= variables
    role = _template_block(f'RoleName: !Sub "${{Prefix}}-{function.name}-role"')
    assert sorted(re.findall(r"Sid: (\w+)", role)) == sorted([registry.LOG_STATEMENT, *function.policy])


@pytest.mark.parametrize("folder", [f.folder for p in registry.PIPELINES if p.fed_by == "client" for f in p.functions])
def test_a_function_behind_the_api_times_out_before_api_gateway(folder):
    """After 29 s API Gateway answers 504 while the function may still write: the client then
    resends rows already written. A function that times out sooner always answers itself."""
    assert FUNCTIONS[folder].timeout_s < registry.API_GATEWAY_TIMEOUT_S


@pytest.mark.parametrize("name", PIPELINES)
def test_the_template_declares_each_resource(name):
    for resource in PIPELINES[name].resources:
        assert resource.name.format(p="${Prefix}", account="${AWS::AccountId}") in TEMPLATE, resource


def test_every_module_reads_the_registry():
    assert infra.FUNCTIONS == list(FUNCTIONS)
    assert set(cost.FUNCTIONS) == set(FUNCTIONS)
    assert cost.STREAM_MAPPINGS == {m.function: (m.batch_size, m.window_seconds) for m in registry.mappings()}
    assert list(viz.PIPELINES) == [p.number for p in registry.PIPELINES]
    listed = " ".join(names for _, names, _ in preflight.RESOURCES)
    for function in FUNCTIONS.values():
        assert f"{{p}}-{function.name}" in listed
    assert registry.stores() == ("raw_s3", "dynamodb", "warehouse")


def test_an_incomplete_declaration_is_caught():
    """The checks above are not vacuous: a pipeline without cost inputs or diagram fails."""
    broken = registry.Pipeline(name="raw_s3", number=2, notebook="none.ipynb", functions=(), resources=(),
                               bills=(), diagram=registry.Node("", "", ()))
    for test in (test_each_pipeline_has_its_module_notebook_cost_and_diagram,):
        PIPELINES["broken"] = broken
        try:
            with pytest.raises(AssertionError):
                test("broken")
        finally:
            del PIPELINES["broken"]


def test_the_api_refuses_more_price_decimals_than_the_warehouse_keeps():
    """COPY cuts extra decimals silently while DynamoDB keeps them: the ingest function's
    limit must be the warehouse column's scale, so both stores hold the same price."""
    import re

    from ecomlib.deploy import load_shared
    from ecomlib.pipelines import warehouse

    source = Path(warehouse.__file__).read_text()
    scale = int(re.search(r"unit_price\s+DECIMAL\(\d+,\s*(\d+)\)", source).group(1))
    assert load_shared("rows").MAX_PRICE_DECIMALS == scale
