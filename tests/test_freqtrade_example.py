"""examples/freqtrade_strategy.py: entries the policy refuses are not confirmed, entries it
would resize are sized down, stops move to the safe side of liquidation, and any error in
the guard denies. The first tests drive the mixin with freqtrade's attributes stubbed; the
rest run it inside freqtrade itself — its ``strategy_safe_wrapper`` (which turns an
exception into its default, *allow*), its ``Trade`` and its backtester. freqtrade is part
of the ``[dev]`` extra (Python 3.11+), so CI runs them; they are skipped only on 3.10."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from .conftest import EXAMPLES, POLICIES, ROOT

needs_freqtrade = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="freqtrade needs Python 3.11+ (the [dev] extra has it there)"
)

NOW = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)


def load_example():
    name = "riskguard_example_freqtrade_strategy"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / "freqtrade_strategy.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


ex = load_example()
CONFIG = {
    "stake_currency": "USDT",
    "margin_mode": "isolated",
    "trading_mode": "futures",
    "exchange": {"name": "binance"},
}


class Wallets:
    def __init__(self, total: float) -> None:
        self.total = total

    def get_total(self, currency: str) -> float:
        return self.total


def trade(**kw):
    base = {
        "pair": "BTC/USDT:USDT",
        "is_short": False,
        "amount": 0.1,
        "open_rate": 60000.0,
        "leverage": 5.0,
        "stake_amount": 1200.0,
        "stop_loss": 57000.0,
        "liquidation_price": None,
    }
    base.update(kw)
    return SimpleNamespace(**base)


class Stub(ex.RiskguardMixin):
    """The mixin with freqtrade's attributes stubbed: config, wallets, dp, open trades."""

    riskguard_policy = str(POLICIES / "default.yaml")
    stoploss = -0.20

    def __init__(self, trades=(), wallet=10_000.0) -> None:
        self.config = CONFIG
        self.wallets = Wallets(wallet)
        self.dp = None
        self.trades = list(trades)

    def open_trades(self):
        return self.trades


def entry(strategy, pair="ETH/USDT:USDT", amount=1.0, rate=3000.0, side="long"):
    return strategy.confirm_trade_entry(pair, "limit", amount, rate, "GTC", NOW, None, side)


def test_entries_the_policy_allows_are_confirmed():
    s = Stub([trade()])
    assert entry(s) is True  # 3,000 USDT at 5x: utilization (1200 + 600) / 10,000
    assert entry(s, side="short") is True


def test_entries_the_policy_refuses_or_shrinks_are_not(caplog):
    s = Stub([trade()])
    assert entry(s, amount=10.0) is False  # 30,000 USDT at 5x: 6,000 of margin, past 35 %
    assert "MARGIN_UTILIZATION_EXCEEDS_MAX" in caplog.text and "resize" in caplog.text
    s.guard.set_trading_state("halted")  # the guard is the strategy's: its kill switch works


def test_stop_moves_to_the_safe_side_of_liquidation():
    s = Stub([trade(stop_loss=None)])
    t = s.trades[0]
    ratio = s.custom_stoploss(t.pair, t, NOW, 60000.0, 0.0, False)
    assert ratio is not None and ratio < 0
    # freqtrade applies it as current_rate · (1 − |ratio| / leverage)
    new_stop = 60000.0 * (1 - abs(ratio) / t.leverage)
    safe = next(
        a for a in s.guard.check(s.riskguard_snapshot()).actions if a.type == "set_stop_loss"
    )
    assert new_stop == pytest.approx(safe.params["price"], rel=1e-12)
    # the missing stop (stop-before-liquidation) merged with the 1 % risk budget's tighter one
    assert safe.params["rules"] == ["risk-per-trade", "stop-before-liquidation"]
    assert new_stop == pytest.approx(59000.0, rel=1e-9)  # 1 % of 10,000 over 0.1 BTC
    lp = s.guard.metrics(s.riskguard_snapshot()).positions[0].liquidationPrice
    assert lp < new_stop < 60000.0


def test_a_stop_already_before_liquidation_is_left_alone():
    s = Stub([trade(stop_loss=57000.0)])
    t = s.trades[0]
    # risk-per-trade warns (300 at the stop is 3 % of equity) and proposes 59,000, but a
    # warning does not move the strategy's own stop
    d = s.guard.check(s.riskguard_snapshot())
    [stop] = [a for a in d.actions if a.type == "set_stop_loss"]
    assert stop.rule == "risk-per-trade" and stop.params["price"] == pytest.approx(59000.0)
    assert {v.severity for v in d.violations if v.rule == "risk-per-trade"} == {"warning"}
    assert s.custom_stoploss(t.pair, t, NOW, 60000.0, 0.0, False) is None


def test_warning_stops_are_followed_when_asked():
    s = Stub([trade(stop_loss=57000.0)])
    s.riskguard_follow_warnings = True
    t = s.trades[0]
    ratio = s.custom_stoploss(t.pair, t, NOW, 60000.0, 0.0, False)
    assert ratio is not None
    assert 60000.0 * (1 - abs(ratio) / t.leverage) == pytest.approx(59000.0, rel=1e-9)


def test_short_stops_are_tightened_downwards():
    s = Stub([trade(is_short=True, open_rate=60000.0, stop_loss=80000.0)])
    t = s.trades[0]
    ratio = s.custom_stoploss(t.pair, t, NOW, 60000.0, 0.0, False)
    new_stop = 60000.0 * (1 + abs(ratio) / t.leverage)
    assert 60000.0 < new_stop < 80000.0


# ----------------------------------------------------------------- errors, wallet, sizing


class Broken(Stub):
    riskguard_policy = "/nonexistent/policy.yaml"  # the guard cannot even be built


def test_any_error_in_the_guard_refuses_the_entry(caplog):
    s = Broken([trade()])
    assert entry(s) is False
    assert "check failed" in caplog.text
    assert (
        s.custom_stake_amount("ETH/USDT:USDT", NOW, 3000.0, 500.0, 10.0, 9000.0, 5.0, None, "long")
        == 0.0
    )
    t = s.trades[0]
    assert s.custom_stoploss(t.pair, t, NOW, 60000.0, 0.0, False) is None  # the stop stays


def test_the_default_policy_is_the_shipped_preset_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no policies/ here
    s = Stub([trade()])
    s.riskguard_policy = ex.RiskguardMixin.riskguard_policy
    assert s.riskguard_policy == "preset:default"
    assert s.guard.policy.name == "default"
    assert entry(s) is True


def test_live_wallet_does_not_count_unrealized_pnl_twice():
    # freqtrade's dry-run wallet excludes uPnL; live it is ccxt's total, which for Binance
    # USDⓈ-M is marginBalance = wallet + uPnL. The position is 0.1 BTC up 1,000 at 70,000.
    up = trade(stop_loss=None)
    dry = Stub([up], wallet=10_000.0)
    dry.config = {**CONFIG, "dry_run": True}
    dry.mark = lambda pair, fallback: 70_000.0
    live = Stub([up], wallet=11_000.0)  # the exchange's total: 10,000 + 1,000 uPnL
    live.config = {**CONFIG, "dry_run": False}
    live.mark = dry.mark
    for s in (dry, live):
        snap = s.riskguard_snapshot()
        assert snap.walletBalance == pytest.approx(10_000.0)
        assert s.guard.metrics(snap).equity == pytest.approx(11_000.0)
    bybit = Stub([up], wallet=10_000.0)  # Bybit's ccxt total is walletBalance: left alone
    bybit.config = {**CONFIG, "dry_run": False, "exchange": {"name": "bybit"}}
    bybit.mark = dry.mark
    assert bybit.riskguard_snapshot().walletBalance == pytest.approx(10_000.0)


def test_an_entry_that_only_needs_resizing_is_sized_to_the_allowed_amount():
    s = Stub([])
    rate, lev = 3000.0, 5.0
    proposed = 5000.0  # margin: 50 % of 10,000 — the default policy caps it at 35 %
    order = s.riskguard_entry_order("ETH/USDT:USDT", "market", proposed * lev / rate, rate, "long")
    d = s.guard.check(s.riskguard_snapshot({"ETH/USDT:USDT": rate}), order)
    assert d.decision == "resize"
    stake = s.custom_stake_amount(
        "ETH/USDT:USDT", NOW, rate, proposed, 10.0, 9000.0, lev, None, "long"
    )
    assert stake == pytest.approx(d.maxAllowedAmount * rate / lev)
    assert 0 < stake < proposed
    assert entry(s, amount=proposed * lev / rate) is False  # unsized, the entry is refused
    assert entry(s, amount=stake * lev / rate) is True  # sized, it is confirmed
    # a stake the policy allows is left as it is
    assert (
        s.custom_stake_amount("ETH/USDT:USDT", NOW, rate, 500.0, 10.0, 9000.0, lev, None, "long")
        == 500.0
    )


# ----------------------------------------------------------------- against freqtrade itself


def _strategy(tmp_path, policy: str | None = None):
    from freqtrade.persistence import init_db

    init_db("sqlite://")
    strategy = ex.RiskguardStrategy(
        {**CONFIG, "timeframe": "1h", "user_data_dir": str(tmp_path), "dry_run": True}
    )
    if policy is not None:
        strategy.riskguard_policy = policy
    strategy.wallets = Wallets(10_000.0)
    strategy.dp = None
    return strategy


@needs_freqtrade
def test_freqtrades_wrapper_gets_a_refusal_not_an_exception(tmp_path):
    """freqtrade calls the callbacks through strategy_safe_wrapper(default_retval=...): an
    exception escaping them would become True (enter) / the proposed stake."""
    from freqtrade.strategy.strategy_wrapper import strategy_safe_wrapper

    strategy = _strategy(tmp_path, "/nonexistent/policy.yaml")
    confirm = strategy_safe_wrapper(strategy.confirm_trade_entry, default_retval=True)
    assert confirm(
        pair="ETH/USDT:USDT", order_type="limit", amount=1.0, rate=3000.0,
        time_in_force="GTC", current_time=NOW, entry_tag=None, side="long",
    ) is False  # fmt: skip
    stake = strategy_safe_wrapper(strategy.custom_stake_amount, default_retval=500.0)
    assert stake(
        pair="ETH/USDT:USDT", current_time=NOW, current_rate=3000.0, proposed_stake=500.0,
        min_stake=10.0, max_stake=9000.0, leverage=5.0, entry_tag=None, side="long",
    ) == 0.0  # fmt: skip
    # and a working guard answers through the same wrapper
    ok = _strategy(tmp_path)
    confirm = strategy_safe_wrapper(ok.confirm_trade_entry, default_retval=False)
    assert confirm(
        pair="ETH/USDT:USDT", order_type="limit", amount=1.0, rate=3000.0,
        time_in_force="GTC", current_time=NOW, entry_tag=None, side="long",
    ) is True  # fmt: skip


@needs_freqtrade
def test_stop_ratio_is_freqtrades_own_formula():
    from freqtrade.strategy import stoploss_from_absolute

    for stop, rate, short, lev in [
        (57000, 60000, False, 5),
        (63000, 60000, True, 3),
        (61000, 60000, False, 2),
    ]:
        assert ex.stop_ratio(stop, rate, short, lev) == stoploss_from_absolute(
            stop, rate, short, lev
        )


@needs_freqtrade
def test_strategy_runs_inside_freqtrade(tmp_path):
    from freqtrade.enums import TradingMode
    from freqtrade.persistence import Trade

    strategy = _strategy(tmp_path, str(POLICIES / "default.yaml"))
    t = Trade(
        pair="BTC/USDT:USDT",
        is_short=False,
        amount=0.1,
        amount_requested=0.1,
        open_rate=60000.0,
        leverage=5.0,
        stake_amount=1200.0,
        fee_open=0.0005,
        fee_close=0.0005,
        open_date=NOW,
        exchange="binance",
        trading_mode=TradingMode.FUTURES,
        is_open=True,
    )
    t.set_liquidation_price(None)
    Trade.session.add(t)
    Trade.commit()
    assert strategy.confirm_trade_entry(
        "ETH/USDT:USDT", "limit", 1.0, 3000.0, "GTC", NOW, None, "long"
    )
    assert not strategy.confirm_trade_entry(
        "ETH/USDT:USDT", "limit", 10.0, 3000.0, "GTC", NOW, None, "long"
    )
    safe = next(
        a
        for a in strategy.guard.check(strategy.riskguard_snapshot()).actions
        if a.type == "set_stop_loss"
    )
    ratio = strategy.custom_stoploss(t.pair, t, NOW, 60000.0, 0.0, False)
    t.adjust_stop_loss(60000.0, ratio)  # freqtrade's own application of the ratio
    assert t.stop_loss == pytest.approx(safe.params["price"], rel=1e-6)
    assert strategy.custom_stoploss(t.pair, t, NOW, 60000.0, 0.0, False) is None  # now safe


@needs_freqtrade
def test_a_freqtrade_backtest_enters_resized_instead_of_refusing(tmp_path):
    """freqtrade's backtester, stake 5,000 of a 10,000 wallet at 5x (50 % margin): the
    default policy allows 35 %, so every entry is sized down by custom_stake_amount and
    then confirmed — none is refused, none exceeds the cap."""
    r = subprocess.run(
        [sys.executable, "-m", "tests.freqtrade_backtest", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "RISKGUARD_POLICY": "preset:default"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    trades = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(trades) >= 4 and {t["is_short"] for t in trades} == {True, False}
    wallet = 10_000.0
    for t in trades:
        assert t["stake_amount"] < 5000.0  # resized, not refused
        # margin of the one open trade ≤ 35 % of the wallet at entry (+ amount rounding)
        assert t["stake_amount"] <= 0.35 * wallet + 1e-6
        assert t["stake_amount"] > 0.34 * wallet  # sized to the cap, not below it
        wallet += t["profit_abs"]
