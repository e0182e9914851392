"""Environment overrides, including the old bot's `.env` names: mapped, validated, clamped."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_assets.compute.machine import MachineResources
from forex_assets.compute.overrides import (
    ENV_SETTINGS,
    SettingIssue,
    settings_from_env,
    settings_from_run_config,
    used_value,
    validate_plan_setting,
)
from forex_assets.compute.plan import PlanSettings, ResourcePlan, plan_resources

GiB = 2**30
CORES = 16
MACHINE = MachineResources(CORES, 64 * GiB, {})

MAPPING = {
    "FOREX_BOT_MAX_CONCURRENT_SYMBOLS": "symbols",
    "FOREX_BOT_MAX_CONCURRENT_TF_LOADS": "tf_loads",
    "FOREX_BOT_FEATURE_WORKERS": "features",
    "FOREX_BOT_CPU_THREADS": "training_threads",
    "FOREX_BOT_TALIB_WORKERS": "feature_threads",
    "OMP_NUM_THREADS": "blas_threads",
    "MKL_NUM_THREADS": "blas_threads",
    "OPENBLAS_NUM_THREADS": "blas_threads",
    "FOREX_ASSETS_CORES": "cores",
}
BLAS_VARIABLES = ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"]
NOT_WHOLE_NUMBERS = ["eight", "4.5", "1e9", "0x10", "4 cores", "½", "²", "6-", "--6", "nan", "∞"]
BELOW_ONE = ["0", "-3", "-0", "  -1 ", "00"]


def plan_figure(plan: ResourcePlan, setting: str) -> int:
    """The figure of `plan` that `setting` decides."""
    return {
        "cores": plan.cores,
        **plan.pool_limits,
        "training_threads": plan.step_threads["training"],
        "feature_threads": plan.step_threads["features"],
        "blas_threads": plan.blas_threads_cap,
    }[setting]


def resolve(environ: dict[str, str], machine: MachineResources = MACHINE):
    """What the executor does: env settings, the plan, and the messages the run logs."""
    env_settings, issues = settings_from_env(environ, cores=machine.cores)
    plan = plan_resources(machine, env_settings)
    return env_settings, issues, plan


def using(message: str) -> int:
    match = re.search(r"using (\d+) instead\.$", message)
    assert match, message
    return int(match.group(1))


def test_mapping_covers_every_documented_variable():
    assert ENV_SETTINGS == MAPPING


@pytest.mark.parametrize(("variable", "setting"), sorted(MAPPING.items()))
def test_each_variable_maps_to_its_setting(variable, setting):
    env_settings, issues = settings_from_env({variable: "3"}, cores=CORES)
    assert issues == []
    assert getattr(env_settings, setting) == 3
    others = {name for name in MAPPING.values() if name != setting}
    assert all(getattr(env_settings, name) is None for name in others)
    plan = plan_resources(MACHINE, env_settings)
    assert plan_figure(plan, setting) == 3
    assert plan.reasons[setting] == "set to 3"


def test_all_variables_together():
    environ = {variable: str(i + 1) for i, variable in enumerate(sorted(MAPPING))}
    env_settings, issues = settings_from_env(environ, cores=CORES)
    assert issues == []
    expected_blas = min(int(environ[v]) for v in BLAS_VARIABLES)
    assert env_settings.blas_threads == expected_blas
    for variable, setting in MAPPING.items():
        if setting != "blas_threads":
            assert getattr(env_settings, setting) == int(environ[variable])


def test_unrelated_variables_are_ignored():
    env_settings, issues = settings_from_env({"PATH": "/bin", "FOREX_BOT_OTHER": "eight"})
    assert env_settings == PlanSettings()
    assert issues == []


def test_reads_os_environ_by_default(monkeypatch):
    for variable in MAPPING:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("FOREX_BOT_MAX_CONCURRENT_SYMBOLS", "2")
    monkeypatch.setenv("FOREX_BOT_CPU_THREADS", "eight")
    env_settings, issues = settings_from_env(cores=CORES)
    assert env_settings == PlanSettings(symbols=2)
    assert [issue.source for issue in issues] == ["FOREX_BOT_CPU_THREADS"]


@pytest.mark.parametrize("raw", ["", " ", "\t", "\n  "])
@pytest.mark.parametrize("variable", sorted(MAPPING))
def test_empty_values_mean_unset(variable, raw):
    env_settings, issues = settings_from_env({variable: raw}, cores=CORES)
    assert env_settings == PlanSettings()
    assert issues == []


@pytest.mark.parametrize("raw", ["  6 ", "6\n", "\t6", "+6", "06"])
@pytest.mark.parametrize("variable", sorted(MAPPING))
def test_padded_and_signed_whole_numbers_are_used(variable, raw):
    env_settings, issues = settings_from_env({variable: raw}, cores=CORES)
    assert issues == []
    assert getattr(env_settings, MAPPING[variable]) == 6


@pytest.mark.parametrize(
    "raw", ["\u0663", "\uff13", "\u09e9"]
)  # Arabic-Indic, fullwidth, Bengali 3
def test_unicode_decimal_digits_are_whole_numbers(raw):
    env_settings, issues = settings_from_env({"FOREX_BOT_FEATURE_WORKERS": raw}, cores=CORES)
    assert issues == []
    assert env_settings.features == 3


@pytest.mark.parametrize("raw", NOT_WHOLE_NUMBERS)
@pytest.mark.parametrize("variable", sorted(MAPPING))
def test_not_a_whole_number_is_reported_and_ignored(variable, raw):
    setting = MAPPING[variable]
    env_settings, issues, plan = resolve({variable: raw})
    assert getattr(env_settings, setting) is None
    assert len(issues) == 1
    issue = issues[0]
    assert (issue.source, issue.raw, issue.setting) == (variable, raw, setting)
    message = issue.message(plan)
    assert variable in message
    assert repr(raw) in message
    assert "not a whole number" in message
    assert using(message) == plan_figure(plan, setting)
    assert plan == plan_resources(MACHINE)  # the bad value changed nothing


@pytest.mark.parametrize("raw", BELOW_ONE)
@pytest.mark.parametrize("variable", sorted(MAPPING))
def test_zero_and_negative_are_reported_and_ignored(variable, raw):
    setting = MAPPING[variable]
    env_settings, issues, plan = resolve({variable: raw})
    assert getattr(env_settings, setting) is None
    assert [(i.source, i.raw) for i in issues] == [(variable, raw)]
    message = issues[0].message(plan)
    assert variable in message and repr(raw) in message
    assert "at least 1" in message
    assert using(message) == plan_figure(plan, setting)
    assert plan == plan_resources(MACHINE)


@pytest.mark.parametrize("raw", ["17", "1000", "99999999999999999999", " 4096 "])
@pytest.mark.parametrize("variable", sorted(MAPPING))
def test_values_above_the_cores_are_clamped_and_reported(variable, raw):
    setting = MAPPING[variable]
    env_settings, issues, plan = resolve({variable: raw})
    assert getattr(env_settings, setting) == CORES
    assert [(i.source, i.raw) for i in issues] == [(variable, raw)]
    message = issues[0].message(plan)
    assert variable in message and repr(raw) in message
    assert f"exceeds the {CORES} usable cores" in message
    assert using(message) == plan_figure(plan, setting) == CORES


def test_huge_value_without_known_cores_is_clamped_by_the_plan():
    env_settings, issues = settings_from_env({"FOREX_BOT_MAX_CONCURRENT_SYMBOLS": "9" * 20})
    assert issues == []
    plan = plan_resources(MACHINE, env_settings)
    assert plan.pool_limits["symbols"] == CORES
    assert "clamped" in plan.reasons["symbols"]


def test_the_value_exactly_at_the_cores_is_not_reported():
    env_settings, issues = settings_from_env({"FOREX_BOT_FEATURE_WORKERS": "16"}, cores=CORES)
    assert issues == []
    assert env_settings.features == CORES


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"OMP_NUM_THREADS": "8", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "4"}, 2),
        ({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "2"}, 1),
        ({"MKL_NUM_THREADS": "5", "OPENBLAS_NUM_THREADS": "3"}, 3),
        ({"OMP_NUM_THREADS": "40", "OPENBLAS_NUM_THREADS": "12"}, 12),
        ({"OMP_NUM_THREADS": "40", "OPENBLAS_NUM_THREADS": "50"}, CORES),
    ],
)
def test_smallest_blas_variable_wins(values, expected):
    env_settings, _, plan = resolve(values)
    assert env_settings.blas_threads == expected
    assert plan.blas_threads_cap == expected


def test_invalid_blas_variable_does_not_hide_a_valid_one():
    env_settings, issues, plan = resolve(
        {"OMP_NUM_THREADS": "0", "MKL_NUM_THREADS": "three", "OPENBLAS_NUM_THREADS": "5"}
    )
    assert env_settings.blas_threads == 5
    assert {i.source for i in issues} == {"OMP_NUM_THREADS", "MKL_NUM_THREADS"}
    for issue in issues:
        assert issue.message(plan).endswith("using 5 instead.")


def test_message_reports_the_value_the_plan_really_used():
    """A run-config setting and FOREX_ASSETS_CORES both change what the plan ends up using."""
    env_settings, issues = settings_from_env(
        {
            "FOREX_ASSETS_CORES": "8",
            "FOREX_BOT_CPU_THREADS": "lots",
            "FOREX_BOT_MAX_CONCURRENT_SYMBOLS": "-1",
            "FOREX_BOT_FEATURE_WORKERS": "500",
        },
        cores=CORES,
    )
    run_config = PlanSettings(symbols=3)
    plan = plan_resources(MACHINE, run_config.merged_over(env_settings))
    messages = {issue.source: issue.message(plan) for issue in issues}
    assert plan.cores == 8
    assert using(messages["FOREX_BOT_CPU_THREADS"]) == plan.step_threads["training"] == 3
    assert using(messages["FOREX_BOT_MAX_CONCURRENT_SYMBOLS"]) == 3
    # 500 is clamped to the machine's 16 cores by the environment, then to the 8 chosen cores
    assert using(messages["FOREX_BOT_FEATURE_WORKERS"]) == plan.pool_limits["features"] == 8


def test_used_value_for_every_setting():
    plan = plan_resources(MACHINE, PlanSettings(training_threads=3, feature_threads=2))
    for setting in set(MAPPING.values()):
        assert used_value(plan, setting) == plan_figure(plan, setting)


def test_message_format():
    plan = plan_resources(MACHINE)
    issue = SettingIssue(
        "FOREX_BOT_CPU_THREADS", "eight", "training_threads", "is not a whole number"
    )
    assert issue.message(plan) == (
        "FOREX_BOT_CPU_THREADS='eight' is not a whole number; using 4 instead."
    )


@pytest.mark.parametrize(
    ("cores", "problem", "used"),
    [(0, "must be at least 1", CORES), (-3, "must be at least 1", CORES),
     (100_000, "exceeds the 16 usable cores", CORES)],
)  # fmt: skip
def test_out_of_range_run_config_cores_is_reported_like_the_variable(cores, problem, used):
    config, issues = settings_from_run_config(PlanSettings(cores=cores), cores=CORES)
    plan = plan_resources(MACHINE, config)
    assert plan.cores == used
    assert [issue.message(plan) for issue in issues] == [
        f"executor run config execution.config.cores={cores} {problem}; using {used} instead."
    ]
    _, env_issues = settings_from_env({"FOREX_ASSETS_CORES": str(cores)}, cores=CORES)
    assert [issue.problem for issue in env_issues] == [problem]


def test_ignored_run_config_value_falls_back_to_the_environment():
    config, issues = settings_from_run_config(PlanSettings(cores=0, training=3), cores=CORES)
    env_settings, _ = settings_from_env({"FOREX_ASSETS_CORES": "6"}, cores=CORES)
    plan = plan_resources(MACHINE, config.merged_over(env_settings))
    assert (plan.cores, plan.pool_limits["training"]) == (6, 3)
    assert [issue.message(plan) for issue in issues] == [
        "executor run config execution.config.cores=0 must be at least 1; using 6 instead."
    ]


def test_valid_run_config_passes_unchanged():
    config = PlanSettings(cores=8, blas_threads=2)
    assert settings_from_run_config(config, cores=CORES) == (config, [])


@given(raw=st.integers() | st.integers().map(str) | st.text(), cores=st.integers(1, 512))
def test_one_rule_for_both_sources(raw, cores):
    """A value means the same whether it arrives as a variable's text or a config number."""
    number, issue = validate_plan_setting("X", raw, "cores", cores)
    if issue is None:
        assert number is not None and 1 <= number <= cores
        assert number == int(raw)
    elif number is not None:
        assert number == cores < int(raw)
    text_number, text_issue = validate_plan_setting("X", str(raw), "cores", cores)
    assert text_number == number
    assert (text_issue is None) == (issue is None)


# ---------------------------------------------------------------- fuzzing

env_value = st.none() | st.text() | st.integers().map(str) | st.integers(-5, 5000).map(str)


@settings(max_examples=300, deadline=None)
@given(
    environ=st.fixed_dictionaries({variable: env_value for variable in MAPPING}),
    cores=st.integers(1, 2048),
    memory=st.integers(2**28, 2**43),
    pass_cores=st.booleans(),
)
def test_any_environment_gives_a_plan_inside_the_cores(environ, cores, memory, pass_cores):
    environ = {k: v for k, v in environ.items() if v is not None}
    machine = MachineResources(cores, memory, {})
    env_settings, issues = settings_from_env(environ, cores=cores if pass_cores else None)
    plan = plan_resources(machine, env_settings)
    assert 1 <= plan.cores <= cores
    figures = [
        *plan.pool_limits.values(),
        *plan.step_threads.values(),
        plan.blas_threads_cap,
        plan.threads_for("training"),
    ]
    assert all(1 <= figure <= plan.cores for figure in figures), (figures, plan.cores)
    for issue in issues:
        assert environ[issue.source] == issue.raw
        message = issue.message(plan)
        assert issue.source in message
        assert repr(issue.raw) in message
        assert using(message) == plan_figure(plan, issue.setting)
    reported = {issue.source for issue in issues}
    for variable, raw in environ.items():
        if variable in reported or not raw.strip():
            continue
        # every value that was not reported was used as given
        assert getattr(env_settings, MAPPING[variable]) is not None
        assert int(raw) >= 1
        if pass_cores:
            assert int(raw) <= cores
