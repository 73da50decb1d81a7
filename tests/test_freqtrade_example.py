"""examples/freqtrade_strategy.py: entries the policy refuses are not confirmed, and stops
move to the safe side of liquidation. The callbacks' logic runs with stubs everywhere;
the last tests run the strategy against freqtrade itself where it is installed."""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from .conftest import EXAMPLES, POLICIES

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


# ----------------------------------------------------------------- against freqtrade itself


def test_stop_ratio_is_freqtrades_own_formula():
    pytest.importorskip("freqtrade")
    from freqtrade.strategy import stoploss_from_absolute

    for stop, rate, short, lev in [
        (57000, 60000, False, 5),
        (63000, 60000, True, 3),
        (61000, 60000, False, 2),
    ]:
        assert ex.stop_ratio(stop, rate, short, lev) == stoploss_from_absolute(
            stop, rate, short, lev
        )


def test_strategy_runs_inside_freqtrade(tmp_path):
    pytest.importorskip("freqtrade")
    from freqtrade.enums import TradingMode
    from freqtrade.persistence import Trade, init_db

    init_db("sqlite://")
    strategy = ex.RiskguardStrategy(
        {**CONFIG, "timeframe": "1h", "user_data_dir": str(tmp_path), "dry_run": True}
    )
    strategy.riskguard_policy = str(POLICIES / "default.yaml")
    strategy.wallets = Wallets(10_000.0)
    strategy.dp = None
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
