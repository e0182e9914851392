"""Paper sessions on sample bars: parity with the backtest kernel, limits, restarts.

The sample M1 bars are resampled to complete M5 bars once per module. Sessions use real
ledger and order-book files in the test's own directory.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forex_assets.ingest.sample import generate_sample_m1
from forex_assets.market.contract import Contract
from forex_assets.market.fx_calendar import FxCalendar
from forex_assets.market.resample import resample_bars
from forex_assets.market.timeframes import Timeframe
from forex_assets.strategies.backtest.market import Market
from forex_assets.strategies.backtest.rules import TradeRules
from forex_assets.strategies.backtest.run import backtest
from forex_assets.trading.broker import Broker
from forex_assets.trading.paper_broker import PaperBroker, SwapRates
from forex_assets.trading.paper_session import PaperSession, SignalSource
from forex_assets.trading.risk_ledger import CLOSED, COUNTED_STATES, FILLED, RiskLedger
from forex_assets.trading.risk_limits import RiskLimits
from forex_assets.trading.risk_manager import RiskManager
from forex_assets.trading.sizing import SizingPolicy

ACCOUNT, WORKER = "acct", "worker"
INITIAL = 100_000.0
PERMISSIVE = RiskLimits(0.99, 0.99)
PLAIN = SizingPolicy(scale_by_confidence=False, scale_by_drawdown=False)
RULES = TradeRules(1.5, 3.0, 30, 1.0)
# Everything an intent records except its random id.
COLUMNS = [
    "source",
    "side",
    "lots",
    "price",
    "stop_price",
    "take_price",
    "risk",
    "state",
    "day",
    "reserved_us",
    "filled_us",
    "fill_price",
    "closed_us",
    "exit_price",
    "pnl",
    "exit_reason",
]


@dataclass(frozen=True)
class Data:
    symbol: str
    market: Market
    times: np.ndarray

    def head(self, n: int) -> Data:
        m = self.market
        arrays = [getattr(m, k)[:n] for k in ("open", "high", "low", "close", "atr", "spread")]
        return Data(self.symbol, Market(*arrays, m.day[:n], m.month[:n]), self.times[:n])


def sample(symbol: str, years: float) -> Data:
    m1 = generate_sample_m1(symbol, years=years)
    m5 = resample_bars(m1, Timeframe.M5, FxCalendar()).filter(pl.col("complete"))
    return Data(symbol, Market.from_bars(m5), m5.get_column("time").dt.epoch("us").to_numpy())


@pytest.fixture(scope="module")
def usdjpy() -> Data:
    return sample("USDJPY", 0.1)


@pytest.fixture(scope="module")
def eurusd() -> Data:
    return sample("EURUSD", 0.05)


def random_signal(n: int, seed: int, density: float = 0.03) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sides = rng.choice(np.array([-1, 1], dtype=np.int8), n)
    return np.where(rng.random(n) < density, sides, 0).astype(np.int8)


def source(name: str, signal: np.ndarray, rules: TradeRules = RULES) -> SignalSource:
    return SignalSource(
        name, signal, rules.stop_atr, rules.take_atr, rules.max_hold_bars, rules.trail_atr
    )


@dataclass
class Run:
    session: PaperSession
    ledger: RiskLedger
    broker: PaperBroker

    def intents(self) -> pl.DataFrame:
        return self.ledger.intents(ACCOUNT)


def start(
    directory: Path,
    data: Data,
    sources: list[SignalSource],
    limits: RiskLimits = PERMISSIVE,
    sizing: SizingPolicy = PLAIN,
    commission: float = 0.0,
    swaps: SwapRates | None = None,
) -> Run:
    """A session over new handles on the ledger and book files in `directory`."""
    terms = {"commission_per_lot": commission}
    ledger = RiskLedger(directory / "risk.sqlite")
    manager = RiskManager(ledger, limits, sizing, {data.symbol: terms})
    contract = Contract.for_symbol(data.symbol, **terms)
    broker = PaperBroker(
        directory / "paper.sqlite",
        ACCOUNT,
        data.symbol,
        data.market,
        data.times,
        contract,
        swaps=swaps,
    )
    edge = np.zeros(len(data.market))
    session = PaperSession(
        ACCOUNT, WORKER, data.symbol, data.market, data.times, sources, edge, manager, broker
    )
    return Run(session, ledger, broker)


def bar_of(data: Data, time_us) -> np.ndarray:
    return np.searchsorted(data.times, np.asarray(time_us, dtype=np.int64))


class ProtocolOnly:
    """A broker that is the `Broker` protocol and nothing else: a session reaching for
    anything the protocol does not name fails here instead of passing on a PaperBroker."""

    MEMBERS = frozenset(name for name in vars(Broker) if not name.startswith("_"))

    def __init__(self, inner: Broker):
        self._inner = inner

    def __getattr__(self, name: str):
        if name not in self.MEMBERS:
            raise AttributeError(f"{name!r} is not part of the Broker protocol")
        return getattr(self._inner, name)


# -- parity with the backtest kernel -----------------------------------------------------------


@pytest.mark.parametrize(("name", "seed"), [("usdjpy", 1), ("eurusd", 2)])
def test_a_permissive_session_trades_exactly_like_the_backtest(request, tmp_path, name, seed):
    data: Data = request.getfixturevalue(name)
    signal = random_signal(len(data.market), seed)
    contract = Contract.for_symbol(data.symbol, commission_per_lot=0.0)
    expected = backtest(data.market, signal, RULES, contract).trades
    run = start(tmp_path, data, [source("model", signal)])
    # The session talks to its broker through the protocol only, so any broker module
    # that implements it trades the same way.
    run.session.broker = ProtocolOnly(run.broker)
    summary = run.session.run(INITIAL)

    intents = run.intents()
    closed = intents.filter(pl.col("state") == CLOSED).sort("filled_us")
    finished = expected.filter(pl.col("exit_reason") != "end")
    assert closed.height == finished.height > 50
    # The backtest closes a position still open on the last bar as "end"; the session not.
    assert summary.open_at_end == expected.height - finished.height
    assert summary.reservations == intents.height
    assert summary.refusals == 0
    assert set(finished["exit_reason"]) >= {"stop", "take", "trail", "opposite"}

    got, want = closed.to_dict(as_series=False), finished.to_dict(as_series=False)
    step = contract.lot_step
    np.testing.assert_array_equal(bar_of(data, got["filled_us"]), want["entry_bar"])
    np.testing.assert_array_equal(bar_of(data, got["closed_us"]), want["exit_bar"])
    np.testing.assert_array_equal(got["side"], want["side"])
    np.testing.assert_allclose(got["fill_price"], want["entry_price"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(got["exit_price"], want["exit_price"], rtol=0, atol=1e-9)
    assert got["exit_reason"] == [str(r) for r in want["exit_reason"]]
    lots, bt_lots = np.array(got["lots"]), np.array(want["lots"])
    assert np.abs(lots - bt_lots).max() <= step + 1e-9
    # P&L per lot is the same trade; the totals differ at most by the one lot step.
    pnl, bt_pnl = np.array(got["pnl"]), np.array(want["pnl"])
    np.testing.assert_allclose(pnl / lots, bt_pnl / bt_lots, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(pnl, bt_pnl, rtol=max(1e-3, step / lots.min()), atol=1e-6)
    # EURUSD is sized at the same price as the backtest: the lots agree exactly there.
    if data.symbol == "EURUSD":
        np.testing.assert_allclose(lots, bt_lots, rtol=0, atol=1e-9)
    # The ledger's balance is the backtest's realised equity, to the lot differences.
    state = run.ledger.account_state(ACCOUNT, int(data.times[-1]))
    assert state.balance == pytest.approx(INITIAL + pnl.sum())


# -- limits in a session -----------------------------------------------------------------------


def test_a_binding_daily_trade_cap_is_never_exceeded_and_refusals_are_recorded(tmp_path, eurusd):
    limits = RiskLimits(0.99, 0.99, max_trades_per_day=2)
    signal = random_signal(len(eurusd.market), 3, density=0.2)
    run = start(tmp_path, eurusd, [source("model", signal)], limits=limits)
    summary = run.session.run(INITIAL)
    counted = run.intents().filter(pl.col("state").is_in(COUNTED_STATES))
    per_day = counted.group_by("day").len()
    assert per_day["len"].max() == 2
    assert per_day.height >= 5
    # The day of an intent is the FX day of the bar it fills on.
    np.testing.assert_array_equal(
        counted["day"].to_numpy(), eurusd.market.day[bar_of(eurusd, counted["reserved_us"])]
    )
    refusals = run.ledger.refusals(ACCOUNT)
    assert refusals.height == summary.refusals > 0
    assert set(refusals["rule"]) == {"max_trades_per_day"}
    assert set(refusals["source"]) == {"model"}
    assert summary.reservations == counted.height


def test_sources_share_the_accounts_limits(tmp_path, eurusd):
    # Two sources, one position each at most, and never more than one open between them.
    limits = RiskLimits(0.99, 0.99, max_open_positions=1)
    data = eurusd.head(1_500)
    sources = [source("a", random_signal(1_500, 4, 0.1)), source("b", random_signal(1_500, 5, 0.1))]
    run = start(tmp_path, data, sources, limits=limits)
    run.session.run(INITIAL)
    intents = run.intents().filter(pl.col("state") != "cancelled").sort("reserved_us")
    assert set(intents["source"]) == {"a", "b"}
    # Reservation i+1 comes after position i closed (reserved at the close of its exit bar
    # at the earliest, which is also the next reservation time).
    reserved = intents["reserved_us"].to_numpy()
    ends = intents["closed_us"].fill_null(np.iinfo(np.int64).max).to_numpy()
    assert (reserved[1:] > ends[:-1]).all()
    assert set(run.ledger.refusals(ACCOUNT)["rule"]) == {"max_open_positions"}


def test_a_refused_signal_is_not_requested_again_until_it_changes(tmp_path, eurusd):
    data = eurusd
    limits = RiskLimits(0.99, 0.99, max_trades_per_day=1)
    always_long = np.ones(len(data.market), dtype=np.int8)
    run = start(tmp_path / "constant", data, [source("model", always_long)], limits=limits)
    run.session.run(INITIAL)
    (refusal,) = run.ledger.refusals(ACCOUNT).iter_rows(named=True)
    refused_bar = int(bar_of(data, refusal["time_us"])) - 1  # requested at that bar's close
    assert (run.intents()["reserved_us"] < refusal["time_us"]).all()
    # A pause of one bar in the signal makes the same side news again.
    paused = always_long.copy()
    paused[refused_bar + 1] = 0
    again = start(tmp_path / "paused", data, [source("model", paused)], limits=limits)
    again.session.run(INITIAL)
    times = again.ledger.refusals(ACCOUNT)["time_us"].to_list()
    assert times == [refusal["time_us"], int(data.times[refused_bar + 3])]


# -- restarts ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def restart_case(eurusd) -> tuple[Data, np.ndarray, pl.DataFrame]:
    data = eurusd.head(1_500)
    signal = random_signal(len(data.market), 1)
    with tempfile.TemporaryDirectory() as directory:
        run = start(Path(directory), data, [source("model", signal)])
        run.session.run(INITIAL)
        intents = run.intents().select(COLUMNS)
        run.ledger.close()
    return data, signal, intents


def restart_points(data: Data, signal: np.ndarray, intents: pl.DataFrame, quiet: bool) -> list[int]:
    """Bars k at which a run(end_bar=k) leaves a position open; with `quiet`, the signal
    at bar k-1 (the last bar the first run sees) is 0, else it would open a trade."""
    entry = bar_of(data, intents["filled_us"])
    exit_ = bar_of(data, intents["closed_us"])
    points = []
    for k in range(50, len(data.market) - 50):
        if quiet:
            open_at_k = ((entry < k) & (exit_ >= k)).any()
            wanted = open_at_k and signal[k - 1] == 0 and signal[k - 2] == 0
        else:
            flat_at_k = not ((entry < k) & (exit_ >= k - 1)).any()
            wanted = flat_at_k and signal[k - 1] != 0 and signal[k] == 0
        if wanted:
            points.append(k)
    return points


def resumed(directory: Path, data: Data, signal: np.ndarray, k: int) -> Run:
    first = start(directory, data, [source("model", signal)])
    first.session.run(INITIAL, end_bar=k)
    assert first.broker.bar == k - 1
    first.ledger.close()
    second = start(directory, data, [source("model", signal)])
    summary = second.session.run(INITIAL)
    assert summary.bars == len(data.market) - k
    return second


def test_a_restart_with_a_position_open_ends_like_one_uninterrupted_run(tmp_path, restart_case):
    data, signal, expected = restart_case
    points = restart_points(data, signal, expected, quiet=True)
    assert len(points) > 10
    for k in points[:: max(1, len(points) // 3)][:3]:
        second = resumed(tmp_path / f"k{k}", data, signal, k)
        got = second.intents().select(COLUMNS)
        assert got.equals(expected), k


def test_a_restart_after_a_signal_bar_ends_like_one_uninterrupted_run(tmp_path, restart_case):
    data, signal, expected = restart_case
    points = restart_points(data, signal, expected, quiet=False)
    assert points
    k = points[0]
    got = resumed(tmp_path, data, signal, k).intents().select(COLUMNS)
    assert got.height == expected.height
    assert got.equals(expected)


def test_a_restart_remembers_refused_signals(tmp_path, eurusd):
    data = eurusd.head(1_500)
    limits = RiskLimits(0.99, 0.99, max_trades_per_day=1)
    always_long = np.ones(len(data.market), dtype=np.int8)
    whole = start(tmp_path / "whole", data, [source("model", always_long)], limits=limits)
    whole.session.run(INITIAL)
    expected = whole.ledger.refusals(ACCOUNT).select("time_us", "rule")
    assert expected.height == 1
    k = int(bar_of(data, expected["time_us"][0])) + 20
    first = start(tmp_path / "split", data, [source("model", always_long)], limits=limits)
    first.session.run(INITIAL, end_bar=k)
    second = start(tmp_path / "split", data, [source("model", always_long)], limits=limits)
    second.session.run(INITIAL)
    assert second.ledger.refusals(ACCOUNT).select("time_us", "rule").equals(expected)


def test_running_again_after_the_end_changes_nothing(tmp_path, restart_case):
    data, signal, expected = restart_case
    run = start(tmp_path, data, [source("model", signal)])
    run.session.run(INITIAL)
    again = start(tmp_path, data, [source("model", signal)])
    summary = again.session.run(INITIAL)
    assert (summary.bars, summary.reservations, summary.refusals) == (0, 0, 0)
    assert again.intents().select(COLUMNS).equals(expected)


# -- the books balance -------------------------------------------------------------------------


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 10_000),
    density=st.sampled_from([0.02, 0.1, 0.3]),
    max_trades=st.sampled_from([None, 1, 3]),
    trail=st.sampled_from([0.0, 1.0]),
)
def test_the_balance_is_the_initial_equity_plus_the_closed_pnl(
    eurusd, seed, density, max_trades, trail
):
    data = eurusd.head(1_200)
    n = len(data.market)
    rules = TradeRules(1.5, 3.0, 24, trail)
    sources = [
        source("a", random_signal(n, seed, density), rules),
        source("b", random_signal(n, seed + 1, density), rules),
    ]
    limits = RiskLimits(0.03, 0.06, max_trades_per_day=max_trades, loss_streak_limit=2)
    swaps = SwapRates(long_per_lot=-7.0, short_per_lot=2.0)
    with tempfile.TemporaryDirectory() as directory:
        run = start(
            Path(directory), data, sources, limits, SizingPolicy(), commission=7.0, swaps=swaps
        )
        summary = run.session.run(INITIAL)
        intents = run.intents()
        assert set(intents["state"]) <= {CLOSED, FILLED, "cancelled"}
        closed = intents.filter(pl.col("state") == CLOSED).sort("closed_us")
        last = int(data.times[-1])
        state = run.ledger.account_state(ACCOUNT, last)
        assert state.balance == pytest.approx(INITIAL + closed["pnl"].sum(), abs=1e-6)
        days = run.ledger.days(ACCOUNT)
        assert days["realized_pnl"].sum() == pytest.approx(closed["pnl"].sum(), abs=1e-6)
        # Marked equity at the end: the balance plus what is still open.
        assert state.equity == pytest.approx(state.balance + run.broker.open_pnl(n - 1), abs=1e-6)
        assert state.open_positions == summary.open_at_end
        # The loss streak is the run of losses at the end of the closed trades.
        pnl = closed["pnl"].to_list()
        streak = next((i for i, p in enumerate(reversed(pnl)) if p >= 0), len(pnl))
        assert state.loss_streak == streak
        if max_trades is not None:
            counted = intents.filter(pl.col("state").is_in(COUNTED_STATES))
            assert counted.group_by("day").len()["len"].max() <= max_trades
        run.ledger.close()


# -- construction ------------------------------------------------------------------------------


def test_the_session_checks_its_sources(tmp_path, eurusd):
    data = eurusd.head(100)
    good = np.zeros(100, dtype=np.int8)
    with pytest.raises(ValueError, match=r"signal source names \['a', 'a'\] repeat"):
        start(tmp_path, data, [source("a", good), source("a", good)])
    with pytest.raises(ValueError, match=r"source 'b' has \(99,\) signals for 100 bars"):
        start(tmp_path, data, [source("a", good), source("b", good[:99])])
    run = start(tmp_path, data, [source("a", good)])
    with pytest.raises(ValueError, match=r"edge has shape \(3,\)"):
        PaperSession(
            ACCOUNT, WORKER, "EURUSD", data.market, data.times, [], np.zeros(3),
            run.session.manager, run.broker,
        )  # fmt: skip
