"""A freqtrade futures strategy whose entries and stops ask a riskguard policy.

- ``confirm_trade_entry`` checks the entry as a pre-trade order against the account
  (freqtrade's open trades + wallet): an entry the policy denies — or would only allow
  smaller (``resize``; freqtrade cannot shrink an order at this point) — is refused, and
  the reasons are logged.
- ``custom_stoploss`` keeps every stop before liquidation: when a rule the policy
  *enforces* (severity error/critical, e.g. ``stop_before_liquidation``) proposes a stop
  (``set_stop_loss``) tighter than the trade's current one, the stop moves there (never
  looser: freqtrade only tightens). Several rules' proposals for one position arrive merged
  into the most protective (``params["rules"]`` names them), so once the stop must move it
  moves far enough for the risk budget too. A stop proposed *only* by a warning-level rule
  — the default policy's ``risk-per-trade``, which reports trades risking more than 1 % of
  equity — is logged (debug) and not applied: your strategy's ``stoploss`` is your sizing
  decision, and a warning is advice, as the engine treats it when sizing orders. Set
  ``riskguard_follow_warnings = True`` to tighten to those stops as well.

- ``custom_stake_amount`` sizes each entry to what the policy allows: an entry the policy
  would only *resize* is entered at its ``maxAllowedAmount`` (as stake: amount × rate /
  leverage) instead of being refused later; a denied entry gets stake 0 (no trade).
- **Fail closed.** freqtrade calls these callbacks through ``strategy_safe_wrapper`` with a
  default: an exception in ``confirm_trade_entry`` would become ``True`` (enter) and one in
  ``custom_stake_amount`` the proposed stake. Every callback here therefore catches its own
  errors, logs them, and answers "no entry" (``False`` / stake 0); ``custom_stoploss``
  answers ``None`` (the stop stays where it is).
- Wallet: in dry-run and backtesting freqtrade's wallet excludes unrealized PnL, as the
  snapshot's ``walletBalance`` must. Live, ``wallets.get_total()`` is ccxt's ``total``, which
  for Binance USDⓈ-M (``marginBalance``) and OKX (``eq``) already includes it, so the
  open trades' unrealized PnL is taken off there (``LIVE_TOTAL_INCLUDES_UPNL``).

Use it: copy this file to ``user_data/strategies/``, ``pip install riskguard`` into the
freqtrade environment, set ``"trading_mode": "futures"`` and run
``freqtrade trade --strategy RiskguardStrategy``. ``RISKGUARD_POLICY`` selects the policy:
a file path, or ``preset:<name>`` for a policy shipped with riskguard (default
``preset:default``, which works from any working directory); ``RISKGUARD_AUDIT_LOG`` an
audit log.

The riskguard logic lives in :class:`RiskguardMixin`, which does not import freqtrade,
so it can be reused in another strategy (``class Mine(RiskguardMixin, IStrategy)``).
Leverage tiers: freqtrade keeps them privately; the mixin reads them when it can and
otherwise the margin model's default rate is used (each decision notes it).
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any, ClassVar

from riskguard import Guard, Order, Position, Snapshot
from riskguard.model.snapshot import LeverageTier

log = logging.getLogger(__name__)

EXCHANGES = {"binance": "binance", "binanceusdm": "binance", "bybit": "bybit", "okx": "okx"}
#: exchanges whose ccxt ``total`` (freqtrade's live ``get_total``) includes unrealized PnL:
#: Binance USDⓈ-M reports ``marginBalance``, OKX ``eq``; Bybit's is ``walletBalance`` (excl.)
LIVE_TOTAL_INCLUDES_UPNL = frozenset({"binance", "binanceusdm", "okx"})


def stop_ratio(stop_rate: float, current_rate: float, is_short: bool, leverage: float) -> float:
    """freqtrade's ``stoploss_from_absolute`` (kept here so the mixin runs without freqtrade)."""
    if current_rate == 0:
        return 1.0
    sl = 1 - stop_rate / current_rate
    if is_short:
        sl = -sl
    return max(sl, 0.0) * leverage


def enforced(decision: Any, action: Any) -> bool:
    """Whether a blocking violation (error/critical) of the position backs ``action``.

    A merged stop names every rule that proposed it in ``params["rules"]``; an action that
    carries its proposer's severity answers directly.
    """
    if getattr(action, "severity", None) is not None:
        return action.blocking
    rules = set(action.params.get("rules") or (action.rule,))
    return any(
        v.blocking and v.rule in rules and v.symbol == action.symbol for v in decision.violations
    )


class RiskguardMixin:
    """The guard side of the strategy; expects freqtrade's ``config``, ``wallets``, ``dp``."""

    riskguard_policy: str = os.environ.get("RISKGUARD_POLICY", "preset:default")
    riskguard_leverage: float = 5.0
    #: also tighten to stops that only warning-level rules propose (see the module docstring)
    riskguard_follow_warnings: bool = False
    _guard: Guard | None = None

    # -------------------------------------------------------------- the guard

    @property
    def guard(self) -> Guard:
        if self._guard is None:
            # a file, or "preset:<name>" for a policy shipped inside the riskguard package
            self._guard = Guard.from_file(
                self.riskguard_policy, audit_log=os.environ.get("RISKGUARD_AUDIT_LOG")
            )
        return self._guard

    def open_trades(self) -> list:
        from freqtrade.persistence import Trade

        return list(Trade.get_trades_proxy(is_open=True))

    def mark(self, pair: str, fallback: float) -> float:
        """The pair's price now: the ticker live/dry-run, the last candle's close in backtests."""
        dp = getattr(self, "dp", None)
        if dp is None:
            return fallback
        mode = getattr(getattr(dp, "runmode", None), "value", None)
        if mode in ("live", "dry_run"):
            try:
                t = dp.ticker(pair)
            except Exception:  # noqa: BLE001 - no ticker: use the fallback
                t = None
            for key in ("markPrice", "last", "close"):
                v = (t or {}).get(key)
                if v:
                    return float(v)
            return fallback
        try:  # backtesting / hyperopt: never ask the exchange; the candle up to now
            df, _ = dp.get_analyzed_dataframe(pair, self.timeframe)  # type: ignore[attr-defined]
            return float(df.iloc[-1]["close"]) if len(df) else fallback
        except Exception:  # noqa: BLE001 - no candles for the pair
            return fallback

    def tiers(self, pairs: list[str]) -> dict:
        ex = getattr(getattr(self, "dp", None), "_exchange", None)
        raw = getattr(ex, "_leverage_tiers", None) or {}
        out = {}
        for pair in pairs:
            rows = raw.get(pair)
            if not rows:
                continue
            out[pair] = tuple(
                LeverageTier(
                    float(t["minNotional"]),
                    t.get("maxNotional"),
                    float(t["maintenanceMarginRate"]),
                    t.get("maxLeverage"),
                    float(t.get("maintAmt") or 0.0),
                    i + 1,
                )
                for i, t in enumerate(rows)
            )
        return out

    def riskguard_snapshot(self, extra: dict[str, float] | None = None) -> Snapshot:
        """The account as freqtrade sees it: wallet, open trades (with stops), marks."""
        cfg = self.config  # type: ignore[attr-defined]
        stake = cfg["stake_currency"]
        mode = cfg.get("margin_mode") or "isolated"
        positions = []
        for t in self.open_trades():
            positions.append(
                Position(
                    symbol=t.pair,
                    side="short" if t.is_short else "long",
                    contracts=float(t.amount),
                    entryPrice=float(t.open_rate),
                    markPrice=self.mark(t.pair, float(t.open_rate)),
                    leverage=float(t.leverage or 1.0),
                    marginMode=mode,
                    isolatedMargin=float(t.stake_amount) if mode == "isolated" else None,
                    stopLossPrice=float(t.stop_loss) if t.stop_loss else None,
                    liquidationPrice=float(t.liquidation_price) if t.liquidation_price else None,
                )
            )
        pairs = [p.symbol for p in positions] + list(extra or {})
        from riskguard.model.snapshot import Market

        markets = {pair: Market(markPrice=rate) for pair, rate in (extra or {}).items()}
        exchange = cfg.get("exchange", {}).get("name", "generic")
        wallet = float(self.wallets.get_total(stake))  # type: ignore[attr-defined]
        if not cfg.get("dry_run", True) and exchange in LIVE_TOTAL_INCLUDES_UPNL:
            # live: ccxt's total already holds the open positions' uPnL; the snapshot's
            # walletBalance must not (the metrics add it once, from the positions)
            wallet -= sum(
                (1.0 if p.side == "long" else -1.0) * p.contracts * (p.markPrice - p.entryPrice)
                for p in positions
            )
        return Snapshot(
            walletBalance=wallet,
            positions=tuple(positions),
            exchange=EXCHANGES.get(exchange, exchange),
            account=cfg.get("bot_name") or "freqtrade",
            settle=stake,
            leverageTiers=self.tiers(pairs),
            markets=markets,
        )

    # -------------------------------------------------------------- callbacks

    def leverage(
        self,
        pair: str,
        current_time: datetime,
        current_rate: float,
        proposed_leverage: float,
        max_leverage: float,
        entry_tag: str | None,
        side: str,
        **kwargs: Any,
    ) -> float:
        return min(self.riskguard_leverage, max_leverage)

    def confirm_trade_entry(
        self,
        pair: str,
        order_type: str,
        amount: float,
        rate: float,
        time_in_force: str,
        current_time: datetime,
        entry_tag: str | None,
        side: str,
        **kwargs: Any,
    ) -> bool:
        try:
            return self._confirm_entry(pair, order_type, amount, rate, side)
        except Exception:  # fail closed: freqtrade would turn it into "enter"
            log.exception("riskguard: entry %s %s refused: the check failed", side, pair)
            return False

    def riskguard_entry_order(
        self, pair: str, order_type: str, amount: float, rate: float, side: str
    ) -> Order:
        """The entry as a riskguard order, with the stop freqtrade's ``stoploss`` implies."""
        lev = self.riskguard_leverage
        is_short = side == "short"
        # freqtrade's stoploss is the loss on the stake: the price moves stoploss/leverage
        move = abs(self.stoploss) / lev  # type: ignore[attr-defined]
        stop = rate * (1 + move) if is_short else rate * (1 - move)
        return Order(
            symbol=pair,
            side="sell" if is_short else "buy",
            amount=float(amount),
            type=order_type,
            price=float(rate),
            leverage=lev,
            marginMode=self.config.get("margin_mode") or "isolated",  # type: ignore[attr-defined]
            stopLossPrice=stop,
        )

    def _confirm_entry(
        self, pair: str, order_type: str, amount: float, rate: float, side: str
    ) -> bool:
        order = self.riskguard_entry_order(pair, order_type, amount, rate, side)
        decision = self.guard.check(self.riskguard_snapshot({pair: float(rate)}), order)
        if decision.decision == "allow":
            return True
        log.warning(
            "riskguard refused %s %s %.8g @ %.8g (%s): %s",
            side,
            pair,
            amount,
            rate,
            decision.decision,
            "; ".join(decision.reasons()),
        )
        return False

    def custom_stake_amount(
        self,
        pair: str,
        current_time: datetime,
        current_rate: float,
        proposed_stake: float,
        min_stake: float | None,
        max_stake: float,
        leverage: float,
        entry_tag: str | None,
        side: str,
        **kwargs: Any,
    ) -> float:
        """The proposed stake, or the largest the policy allows (0: no entry)."""
        try:
            lev = float(leverage or self.riskguard_leverage)
            rate = float(current_rate)
            amount = float(proposed_stake) * lev / rate
            order = self.riskguard_entry_order(pair, "market", amount, rate, side)
            decision = self.guard.check_quiet(self.riskguard_snapshot({pair: rate}), order)
            if decision.decision == "allow":
                return proposed_stake
            if decision.decision == "resize" and decision.maxAllowedAmount:
                stake = float(decision.maxAllowedAmount) * rate / lev
                log.info(
                    "riskguard: %s %s stake %.8g -> %.8g (%s)",
                    side,
                    pair,
                    proposed_stake,
                    stake,
                    "; ".join(decision.reasons()),
                )
                return stake if min_stake is None or stake >= min_stake else 0.0
            log.warning(
                "riskguard: no stake for %s %s: %s", side, pair, "; ".join(decision.reasons())
            )
            return 0.0
        except Exception:  # fail closed: freqtrade would use the proposed stake
            log.exception("riskguard: no stake for %s %s: the check failed", side, pair)
            return 0.0

    def custom_stoploss(
        self,
        pair: str,
        trade: Any,
        current_time: datetime,
        current_rate: float,
        current_profit: float,
        after_fill: bool,
        **kwargs: Any,
    ) -> float | None:
        try:
            return self._safe_stop(pair, trade, current_rate)
        except Exception:  # the stop stays where it is; logged
            log.exception("riskguard: stop check for %s failed; stop unchanged", pair)
            return None

    def _safe_stop(self, pair: str, trade: Any, current_rate: float) -> float | None:
        decision = self.guard.check_quiet(self.riskguard_snapshot())
        for a in decision.actions:
            if a.type == "set_stop_loss" and a.symbol == pair:
                safe = float(a.params["price"])
                current = float(trade.stop_loss) if trade.stop_loss else None
                tighter = current is None or (safe < current if trade.is_short else safe > current)
                if not tighter:
                    continue
                if not self.riskguard_follow_warnings and not enforced(decision, a):
                    log.debug("riskguard: %s stop %.8g only advised: %s", pair, safe, a.rule)
                    continue
                lev = float(trade.leverage or 1.0)
                return -stop_ratio(safe, current_rate, trade.is_short, lev)
        return None


try:  # the strategy class itself needs freqtrade; the mixin above does not
    from freqtrade.strategy import IStrategy
except ImportError:  # pragma: no cover - documentation and stub tests import the mixin
    IStrategy = None


if IStrategy is not None:

    class RiskguardStrategy(RiskguardMixin, IStrategy):
        """EMA crossover, long and short, with entries and stops checked by riskguard."""

        INTERFACE_VERSION = 3
        can_short = True
        timeframe = "1h"
        stoploss = -0.20
        use_custom_stoploss = True
        startup_candle_count = 50
        minimal_roi: ClassVar[dict] = {"0": 0.10}

        def populate_indicators(self, dataframe, metadata):
            dataframe["fast"] = dataframe["close"].ewm(span=12).mean()
            dataframe["slow"] = dataframe["close"].ewm(span=26).mean()
            return dataframe

        def populate_entry_trend(self, dataframe, metadata):
            up = (dataframe["fast"] > dataframe["slow"]) & (
                dataframe["fast"].shift(1) <= dataframe["slow"].shift(1)
            )
            down = (dataframe["fast"] < dataframe["slow"]) & (
                dataframe["fast"].shift(1) >= dataframe["slow"].shift(1)
            )
            dataframe.loc[up, "enter_long"] = 1
            dataframe.loc[down, "enter_short"] = 1
            return dataframe

        def populate_exit_trend(self, dataframe, metadata):
            dataframe.loc[dataframe["fast"] < dataframe["slow"], "exit_long"] = 1
            dataframe.loc[dataframe["fast"] > dataframe["slow"], "exit_short"] = 1
            return dataframe
