"""The model gate in front of paper trading, run as Dagster runs it on a real instance."""

import math

import dagster as dg
import pytest

from forex_assets.definitions import build_definitions
from forex_assets.defs.checks import MODEL_GATE
from forex_assets.defs.jobs import MODEL_GATE_CHECK, PAPER_TRADING_JOB
from forex_assets.defs.keys import TRAINED_MODELS
from forex_assets.partitions import register_symbols

GATE_OP = f"trained_models_{MODEL_GATE}"


@pytest.fixture
def instance(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        register_symbols(test_instance, ["EURUSD"])
        yield test_instance


def run_gate(
    instance: dg.DagsterInstance, config: dict | None = None
) -> dg.AssetCheckEvaluation | dg.ExecuteInProcessResult:
    # The paper trading job with only its gate selected: the gate as that job runs it.
    paper = build_definitions().resolve_job_def(PAPER_TRADING_JOB)
    job = paper.get_subset(asset_selection=set(), asset_check_selection={MODEL_GATE_CHECK})
    run_config = {"ops": {GATE_OP: {"config": config}}} if config else None
    result = job.execute_in_process(
        instance=instance, partition_key="EURUSD", raise_on_error=False, run_config=run_config
    )
    evaluations = result.get_asset_check_evaluations()
    return evaluations[0] if evaluations else result


def trained(instance: dg.DagsterInstance, **metadata: object) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(TRAINED_MODELS, partition="EURUSD", metadata=metadata)
    )


def test_a_model_that_survives_deflation_and_pbo_passes(instance):
    trained(instance, deflated_sharpe_ratio=0.97, pbo=0.2, selected_strategy="blend@0.10")
    evaluation = run_gate(instance)
    assert evaluation.passed
    assert evaluation.metadata["deflated_sharpe_ratio"].value == 0.97


@pytest.mark.parametrize(
    ("dsr", "pbo", "message"),
    [
        (0.60, 0.2, "Deflated Sharpe 0.600 is below 0.95"),
        (0.99, 0.7, "PBO 0.700 is above 0.5"),
        (0.10, 0.9, "Deflated Sharpe 0.100 is below 0.95; PBO 0.900 is above 0.5"),
    ],
)
def test_a_weak_or_overfit_model_is_blocked(instance, dsr, pbo, message):
    trained(instance, deflated_sharpe_ratio=dsr, pbo=pbo)
    evaluation = run_gate(instance)
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert message in evaluation.description
    assert "may not feed paper_trading" in evaluation.description


def test_an_unestimated_pbo_blocks_with_its_reason(instance):
    trained(instance, deflated_sharpe_ratio=0.99, pbo=math.nan, pbo_note="too few trading days")
    evaluation = run_gate(instance)
    assert not evaluation.passed
    assert "too few trading days" in evaluation.description


def test_thresholds_are_run_config_and_can_switch_a_half_off(instance):
    trained(instance, deflated_sharpe_ratio=0.6, pbo=math.nan)
    assert not run_gate(instance, {"min_deflated_sharpe": 0.5}).passed  # PBO still unknown
    assert run_gate(instance, {"min_deflated_sharpe": 0.5, "max_pbo": 1.0}).passed


def test_the_latest_materialization_is_judged(instance):
    trained(instance, deflated_sharpe_ratio=0.99, pbo=0.1)
    trained(instance, deflated_sharpe_ratio=0.2, pbo=0.1)  # retrained, and worse
    assert not run_gate(instance).passed


def test_never_trained_fails_with_what_to_do(instance):
    result = run_gate(instance)
    assert isinstance(result, dg.ExecuteInProcessResult) and not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "trained_models has never been materialized for EURUSD" in str(
        failure.step_failure_data.error
    )
