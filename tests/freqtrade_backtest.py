"""Run ``examples/freqtrade_strategy.py`` through freqtrade's own backtester, offline.

``python -m tests.freqtrade_backtest WORKDIR`` writes a small deterministic futures data set
(BTC/USDT:USDT, 1h candles, mark candles and a flat funding rate) into WORKDIR, runs
freqtrade's ``Backtesting`` on ``RiskguardStrategy`` with a stake larger than the default
policy allows, and prints the trades as JSON on the last line.

freqtrade loads markets and leverage tiers from the exchange when it starts; with no network
here, its exchange object is built with ``validate=False`` and given one market and Binance's
first BTCUSDT leverage brackets (MMR 0.4 % / 0.5 % / 1 %, from ccxt's recorded
``leverageBrackets``). Everything else — data loading, the callbacks through
``strategy_safe_wrapper``, order sizing, fills — is freqtrade's.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAIR = "BTC/USDT:USDT"
T0 = 1704067200000  # 2024-01-01T00:00Z
HOUR = 3_600_000

MARKET = {
    "id": "BTCUSDT",
    "symbol": PAIR,
    "base": "BTC",
    "quote": "USDT",
    "settle": "USDT",
    "baseId": "BTC",
    "quoteId": "USDT",
    "settleId": "USDT",
    "type": "swap",
    "spot": False,
    "margin": False,
    "swap": True,
    "future": False,
    "option": False,
    "active": True,
    "contract": True,
    "linear": True,
    "inverse": False,
    "contractSize": 1.0,
    "expiry": None,
    "expiryDatetime": None,
    "strike": None,
    "optionType": None,
    "taker": 0.0005,
    "maker": 0.0002,
    "precision": {"amount": 0.001, "price": 0.1},
    "limits": {
        "leverage": {"min": 1, "max": 125},
        "amount": {"min": 0.001, "max": 1000},
        "price": {"min": 556.8, "max": 4529764},
        "cost": {"min": 100, "max": None},
        "market": {"min": 0.001, "max": 120},
    },
    "info": {},
}
TIERS = [
    {"minNotional": 0.0, "maxNotional": 50000.0, "maintenanceMarginRate": 0.004,
     "maxLeverage": 125.0, "maintAmt": 0.0},
    {"minNotional": 50000.0, "maxNotional": 250000.0, "maintenanceMarginRate": 0.005,
     "maxLeverage": 100.0, "maintAmt": 50.0},
    {"minNotional": 250000.0, "maxNotional": 3000000.0, "maintenanceMarginRate": 0.01,
     "maxLeverage": 50.0, "maintAmt": 1300.0},
]  # fmt: skip


def write_data(datadir: Path, candles: int = 400) -> None:
    """A deterministic path: ±8 % swings around a slow drift, so the EMAs cross both ways."""
    rows, price = [], 40000.0
    for i in range(candles):
        close = 40000.0 * (1 + 0.08 * math.sin(i / 15) + 0.0003 * i)
        hi, lo = max(price, close) * 1.002, min(price, close) * 0.998
        rows.append([T0 + i * HOUR, price, hi, lo, close, 100.0])
        price = close
    d = datadir / "futures"
    d.mkdir(parents=True, exist_ok=True)
    stem = PAIR.replace("/", "_").replace(":", "_")
    (d / f"{stem}-1h-futures.json").write_text(json.dumps(rows))
    (d / f"{stem}-1h-mark.json").write_text(json.dumps([[*r[:5], 0.0] for r in rows]))
    (d / f"{stem}-1h-funding_rate.json").write_text(
        json.dumps([[r[0], 0.0001, 0.0, 0.0, 0.0, 0.0] for r in rows])
    )


def run(work: Path, stake: float = 5000.0, wallet: float = 10000.0) -> list[dict]:
    from freqtrade.configuration import Configuration
    from freqtrade.enums import RunMode
    from freqtrade.optimize.backtesting import Backtesting
    from freqtrade.resolvers import ExchangeResolver

    datadir = work / "data" / "binance"
    write_data(datadir)
    cfg = {
        "trading_mode": "futures",
        "margin_mode": "isolated",
        "stake_currency": "USDT",
        "stake_amount": stake,
        "dry_run": True,
        "dry_run_wallet": wallet,
        "max_open_trades": 1,
        "timeframe": "1h",
        "exchange": {"name": "binance", "pair_whitelist": [PAIR], "pair_blacklist": []},
        "pairlists": [{"method": "StaticPairList"}],
        "entry_pricing": {"price_side": "same", "use_order_book": False},
        "exit_pricing": {"price_side": "same", "use_order_book": False},
        "dataformat_ohlcv": "json",
    }
    (work / "config.json").write_text(json.dumps(cfg))
    args = {
        "config": [str(work / "config.json")],
        "strategy": "RiskguardStrategy",
        "strategy_path": str(ROOT / "examples"),
        "datadir": str(datadir),
        "user_data_dir": str(work),
        "export": "none",
    }
    config = Configuration(args, RunMode.BACKTEST).get_config()
    exchange = ExchangeResolver.load_exchange(config, validate=False)
    for api in (exchange._api, exchange._api_async):
        api.set_markets([MARKET])
    exchange._markets = exchange._api.markets
    exchange._last_markets_refresh = 2**62  # never reload (no network)
    exchange._leverage_tiers = {PAIR: TIERS}
    bt = Backtesting(config, exchange=exchange)
    bt.start()
    return [
        {k: t[k] for k in ("open_date", "is_short", "stake_amount", "amount", "open_rate",
                           "leverage", "profit_abs")}
        for t in bt.results["strategy"]["RiskguardStrategy"]["trades"]
    ]  # fmt: skip


if __name__ == "__main__":
    trades = run(Path(sys.argv[1]))
    print(json.dumps(trades, default=str))
