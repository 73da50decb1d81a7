"""A complete ccxt bot with riskguard as its guardrail.

    python examples/bot.py --demo            # offline: recorded Binance responses, nothing sent
    RISKGUARD_CCXT_APIKEY=… RISKGUARD_CCXT_SECRET=… python examples/bot.py --testnet

What it shows, in the order a bot does it:

1. wrap the exchange — three lines, and every order is checked before it is sent;
2. on each account update, check the account and apply the actions the policy proposes
   (here: place missing stops; margin-mode switches are reported, not forced);
3. before each order, let the guard allow, resize (opted in) or reject it;
4. the kill switch and a policy reload, as an operator would use them.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
from pathlib import Path

from riskguard import Guard
from riskguard.contrib.ccxt_guard import CcxtExecutor, GuardedExchange, OrderRejected

ROOT = Path(__file__).resolve().parent.parent

log = logging.getLogger("bot")


class RecordedExchange:
    """Answers from tests/fixtures/ccxt/binance.json and prints what it would send."""

    id = "binanceusdm"

    def __init__(self) -> None:
        self.has = {"fetchLeverageTiers": True, "fetchOHLCV": True, "fetchOpenOrders": True}
        self.data = json.loads((ROOT / "tests/fixtures/ccxt/binance.json").read_text())
        # the demo account forgot the stop on ETH: the guard will propose one
        self.data["fetch_open_orders"] = self.data["fetch_open_orders"][:1]

    def __getattr__(self, name):
        if name.startswith("fetch_"):
            key = name

            def fetch(*args, **kwargs):
                value = copy.deepcopy(self.data[key])
                if key == "fetch_leverage_tiers":
                    return {s: v for s, v in value.items() if s in args[0]}
                if key in ("fetch_ohlcv", "fetch_ticker"):
                    return value.get(args[0], [] if key == "fetch_ohlcv" else {})
                return value

            return fetch
        raise AttributeError(name)

    def market(self, symbol):
        return self.data["markets"][symbol]

    def amount_to_precision(self, symbol, amount):
        return f"{int(amount * 1000) / 1000:.3f}"

    def set_leverage(self, leverage, symbol, params=None):
        print(f"  exchange <- set_leverage {leverage} {symbol}")

    def create_order(self, symbol, type, side, amount, price=None, params=None):
        print(f"  exchange <- {type} {side} {amount} {symbol} @ {price or 'market'} {params or ''}")
        return {"id": "demo", "symbol": symbol, "amount": amount}


def make_exchange(args):
    if args.demo:
        return RecordedExchange()
    import ccxt

    ex = ccxt.binanceusdm(
        {
            "apiKey": os.environ["RISKGUARD_CCXT_APIKEY"],
            "secret": os.environ["RISKGUARD_CCXT_SECRET"],
            "enableRateLimit": True,
        }
    )
    if args.testnet:
        ex.set_sandbox_mode(True)
    ex.load_markets()
    return ex


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--demo", action="store_true", help="recorded responses; nothing is sent")
    ap.add_argument("--testnet", action="store_true")
    ap.add_argument("--policy", default=str(ROOT / "policies/default.yaml"))
    ap.add_argument("--audit-log", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    raw = make_exchange(args)
    # 1. the three lines: every order through `exchange` is checked first
    guard = Guard.from_file(args.policy, audit_log=args.audit_log, time_budget_ms=50)
    exchange = GuardedExchange(raw, guard, resize=True)
    exchange.set_leverage(10, "BTC/USDT:USDT")

    # 2. an account update: check the account, apply what the policy proposes
    snapshot = exchange.builder.fetch()
    decision = guard.check(snapshot)
    print(f"account check: {decision.decision}; {len(decision.violations)} finding(s)")
    for reason in decision.reasons():
        print(f"  - {reason}")
    run = CcxtExecutor(raw, apply=("set_stop_loss",)).execute(decision)
    for r in run.results:
        if r.action.type != "alert":
            print(f"  action {r.action.type} {r.action.symbol or ''}: {r.status} {r.detail}")

    # 3. orders from the strategy
    signals = [
        ("BTC/USDT:USDT", "limit", "buy", 0.02, 61000, {"stopLoss": {"triggerPrice": 58000}}),
        ("BTC/USDT:USDT", "limit", "buy", 1.5, 61000, {"stopLoss": {"triggerPrice": 58000}}),
        ("SOL/USDT:USDT", "market", "buy", 20, None, {"leverage": 5}),  # no stop: refused
    ]
    for symbol, kind, side, amount, price, params in signals:
        print(f"order {side} {amount} {symbol}:")
        try:
            exchange.create_order(symbol, kind, side, amount, price, params)
            d = exchange.last_decision
            if not d.allowed:  # a resize: only the approved amount was sent
                print(f"  resized to {d.approved_amount:g} (policy limit)")
        except OrderRejected as exc:
            print(f"  rejected: {'; '.join(exc.decision.reasons())}")

    # 4. operator controls
    guard.set_trading_state("halted", reason="demo: end of session")
    try:
        exchange.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 61000, {"stopLoss": 58000})
    except OrderRejected as exc:
        print(f"after halt: rejected ({exc.decision.decision})")
    else:
        print("after halt: allowed (this policy has no trading_state rule)")
    guard.reload()  # e.g. on SIGHUP: a broken policy file would raise and keep the old one
    guard.close()  # drain the audit log
    return 0


if __name__ == "__main__":
    sys.exit(main())
