"""The margin-model contract and the one liquidation solver every exchange shares.

Every exchange we model liquidates a position when its margin balance falls to its
maintenance margin (plus, on some exchanges, the fee to close). With

    WB     wallet backing the position (isolated margin, or the cross wallet)
    T1,U1  maintenance margin and uPnL of the *other* positions sharing WB (0 if isolated)
    MM(P)  Q·B·MMR − cum, B = P (mark basis) or EP (entry basis)
    f      closing-fee rate counted in the trigger

the linear condition ``WB + U1 + s·Q·(P − EP) = T1 + MM(P) + f·Q·P`` is linear in P:

    mark basis:  P = (WB − T1 + U1 + cum − s·Q·EP) / (Q·(MMR + f) − s·Q)      (Binance form)
    entry basis: P = (T1 + MM_e − WB − U1 + s·Q·EP) / (s·Q − f·Q)             (Bybit/MEXC form)

and for inverse (coin-margined) contracts, with Q in USD and amounts in coin,

    P = Q·(MMR + f + s) / (WB − T1 + U1 + cum + s·Q/EP)                        (Binance COIN-M)

The exchanges differ only in data: which basis, which fee, whether tiers are keyed on
notional or on contracts, and whether a tier's maintenance amount is deducted (Binance,
Bybit, BingX: continuous MM) or the tier's rate applies to the whole position (OKX, Gate,
MEXC, WEEX: MM jumps at tier boundaries, which the tier walk in ``_first_hit`` handles). So each exchange module is a ``MarginModel`` instance with its
parameters and source, not a copy of the algebra. ``docs/margin.md`` states
each form; each exchange module cites its primary source.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from riskguard._compiled import mypyc_attr
from riskguard.model.snapshot import LeverageTier, Position

# ----------------------------------------------------------------- shared primitives
# One home for the arithmetic the solver below and the hot path in ``metrics.py`` share,
# so an exchange's formula is written once (the hot path keeps its own loop shape).


def tier_at(tiers: tuple[LeverageTier, ...], x: float) -> LeverageTier:
    """The last tier whose floor ≤ ``x`` (boundaries go up); the first tier below its floor."""
    chosen = tiers[0]
    for t in tiers:
        if t.minNotional <= x:
            chosen = t
        else:
            break
    return chosen


def linear_mark_root(
    q: float, s: int, ep: float, rate: float, amt: float, wb: float, t1: float, u1: float
) -> float | None:
    """``P = (WB − T1 + U1 + cum − s·Q·EP) / (Q·(MMR + f) − s·Q)``; None when the slope is 0.

    ``rate`` is ``MMR + f`` (maintenance rate plus the closing fee counted in the trigger),
    ``amt`` the tier's maintenance amount when the exchange deducts it (else 0).
    """
    den = q * rate - s * q
    if den == 0:
        return None
    return (wb - t1 + u1 + amt - s * q * ep) / den


def linear_surplus(
    q: float,
    s: int,
    ep: float,
    rate: float,
    amt: float,
    fee: float,
    price: float,
    wb: float,
    t1: float,
    u1: float,
) -> float:
    """Margin balance minus maintenance margin and closing fee of a linear position at ``price``.

    ``WB − T1 + U1 + s·Q·(P − EP) − (max(Q·P·MMR − cum, 0) + f·Q·P)``; ``rate`` is the
    tier's MMR, ``amt`` its maintenance amount when deducted (else 0).
    """
    mm = q * price * rate - amt
    need = (0.0 if mm < 0.0 else mm) + fee * (q * price)  # max(mm, 0.0) without the call
    return wb - t1 + u1 + s * q * (price - ep) - need


def walk_tiers(tiers, i, step, safe, root, surplus, tier_of, price_of) -> float | None:
    """The first price, walking the tiers from index ``i`` by ``step``, where the balance meets
    the requirement: a root inside its own tier, or a tier boundary where the surplus
    changes sign (maintenance margin jumps there). ``safe`` is the sign of the surplus at
    the mark; ``root(tier)``, ``surplus(tier, price)``, ``tier_of(price)`` and
    ``price_of(floor)`` are the exchange's arithmetic (see :meth:`MarginModel._first_hit`).
    """
    n = len(tiers)
    while True:
        t = tiers[i]
        p = root(t)
        if p is not None and p > 0 and tier_of(p) is t:
            return p
        j = i + step
        if not 0 <= j < n:
            return None
        x = tiers[max(i, j)].minNotional  # the boundary: the upper tier's floor
        if x <= 0:
            return None
        b = price_of(x)
        if (surplus(tiers[j], b) > 0) != safe:
            return b
        i = j


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the exchange lets a bot do about margin, for actions' ``feasible``/``reason``.

    ``None`` means the exchange publishes nothing we could confirm; actions then say
    "unknown" instead of guessing.
    """

    switchScope: str = "symbol"  # symbol | account | order (OKX picks the mode per order)
    switchWithPosition: bool | None = None
    switchWithOpenOrders: bool | None = None
    switchDirections: tuple[str, ...] = ("isolated->cross", "cross->isolated")
    addIsolatedMargin: bool | None = True
    reduceIsolatedMargin: bool | None = True
    errorCodes: dict = field(default_factory=dict)  # code -> exchange's message
    notes: str = ""
    #: The exchange's error code when its multi-collateral mode (a snapshot with
    #: ``balances``) allows cross margin only (Binance Multi-Assets: "-4168"); None when
    #: isolated margin works there too, or nothing is published.
    multiCollateralCrossOnly: str | None = None


@dataclass(frozen=True, slots=True)
class Feasibility:
    feasible: bool | None
    reason: str
    code: str | None = None


# compiled by mypyc where it can be: plugins' margin models subclass it in plain Python
@mypyc_attr(allow_interpreted_subclasses=True)
@dataclass(frozen=True, slots=True)
class MarginModel:
    """An exchange's margin rules as data plus the shared solver.

    Subclass and override a method only where an exchange really computes differently;
    the parameters below cover every exchange in ``docs/margin.md``.
    """

    name: str
    title: str
    source: str
    mmBasis: str = "mark"  # mark | entry: price at which maintenance margin is valued
    tierUnit: str = "notional"  # notional | contracts: what tier floors are measured in
    closeFeeRate: float = 0.0  # fee rate counted in the liquidation trigger
    # True: MM = base·MMR − maintenanceAmount (Binance cum, Bybit "MM deduction", BingX
    # maintAmount; derived by the recurrence when not given). False: the tier's rate applies
    # to the whole position and any amount in the tiers is ignored (OKX, Gate, MEXC, WEEX).
    mmDeduction: bool = True
    defaultMaintenanceMarginRate: float | None = None  # used when a symbol has no tiers
    approximate: bool = False  # True where the exchange publishes no exact formula
    inverseSupported: bool = False
    capabilities: Capabilities = field(default_factory=Capabilities)
    notes: str = ""
    # True where the exchange's published trigger counts the taker fee to close (OKX, Gate,
    # BingX): ``closeFeeRate`` is then only the default, and an account's own taker rate
    # (snapshot ``takerFeeRate``, per symbol ``markets[s].takerFeeRate``) replaces it.
    takerFeeInTrigger: bool = False

    # ----------------------------------------------------------------- tiers

    def tier_metric(self, pos: Position, price: float) -> float:
        """The quantity tiers are keyed on at ``price``: notional (quote; coin for inverse) or contracts."""
        if self.tierUnit == "contracts":
            return pos.contracts
        if pos.inverse:
            return pos.size / price
        return pos.size * price

    def default_tier(self) -> LeverageTier | None:
        if self.defaultMaintenanceMarginRate is None:
            return None
        return LeverageTier(0.0, None, self.defaultMaintenanceMarginRate)

    def tier_for(
        self, pos: Position, tiers: tuple[LeverageTier, ...], price: float
    ) -> LeverageTier | None:
        """The last tier whose floor ≤ the position's size at ``price`` (boundaries go up)."""
        if not tiers:
            return self.default_tier()
        return tier_at(tiers, self.tier_metric(pos, price))

    # ----------------------------------------------------------------- figures

    def maintenance_margin(
        self, pos: Position, tiers: tuple[LeverageTier, ...], mark: float
    ) -> tuple[float, LeverageTier | None]:
        """Maintenance margin in settle currency and the tier used (None: no tier, no default)."""
        basis = mark if self.mmBasis == "mark" else pos.entryPrice
        tier = self.tier_for(pos, tiers, basis)
        if tier is None:
            return float("nan"), None
        amt = tier.maintenanceAmount if self.mmDeduction else 0.0
        if pos.inverse:
            mm = pos.size * tier.maintenanceMarginRate / basis - amt
        else:
            mm = pos.size * basis * tier.maintenanceMarginRate - amt
        return (0.0 if mm < 0.0 else mm), tier  # max(mm, 0.0) without the call

    @staticmethod
    def unrealized_pnl(pos: Position, mark: float) -> float:
        if pos.inverse:
            return pos.sign * pos.size * (1.0 / pos.entryPrice - 1.0 / mark)
        return pos.sign * pos.size * (mark - pos.entryPrice)

    @staticmethod
    def notional(pos: Position, mark: float) -> float:
        return pos.size / mark if pos.inverse else pos.size * mark

    # ----------------------------------------------------------------- liquidation

    def liquidation_price(
        self,
        pos: Position,
        tiers: tuple[LeverageTier, ...],
        mark: float,
        wallet: float,
        others_mm: float = 0.0,
        others_upnl: float = 0.0,
    ) -> float | None:
        """The mark price at which this position is liquidated, others held at their mark.

        ``wallet`` is the isolated margin (isolated) or the cross wallet balance (cross);
        ``others_*`` are 0 for isolated positions. Returns None when there is no positive
        liquidation price (the UI's "--") or no tier and no default MMR.
        """
        if pos.inverse:
            return self._solve_tiers(
                pos, tiers, mark, wallet, others_mm, others_upnl, self._inverse
            )
        if self.mmBasis == "entry":
            tier = self.tier_for(pos, tiers, pos.entryPrice)
            if tier is None:
                return None
            p = self._linear_entry(pos, tier, wallet, others_mm, others_upnl)
            return p if p is not None and p > 0 else None
        return self._solve_tiers(
            pos, tiers, mark, wallet, others_mm, others_upnl, self._linear_mark
        )

    def _solve_tiers(self, pos, tiers, mark, wallet, t1, u1, solve) -> float | None:
        tier = self.tier_for(pos, tiers, mark)
        if tier is None:
            return None
        if not tiers or self.tierUnit == "contracts":
            p = solve(pos, tier, wallet, t1, u1)
            return p if p is not None and p > 0 else None
        # Binance: "if the notional at the computed LP falls in another tier, recompute
        # with that tier". Maintenance margin is continuous and monotone in price (cum
        # from the recurrence), so there is one self-consistent tier; iterate. The
        # iteration cycles only where maintenance margin jumps at a tier boundary
        # (whole-position tiers without a deduction, or hand-made amounts that break
        # continuity); then walk the tiers instead. A tier without a positive root does
        # not mean no liquidation: another tier's smaller amount can still give one (a
        # long near 1× whose wallet is below its entry value must liquidate above 0).
        seen = set()
        for _ in range(len(tiers) + 1):
            p = solve(pos, tier, wallet, t1, u1)
            if p is None or p <= 0:
                break
            nxt = self.tier_for(pos, tiers, p)
            if nxt is tier:
                return p
            if id(nxt) in seen:
                break
            seen.add(id(tier))
            tier = nxt
        return self._first_hit(pos, tiers, mark, wallet, t1, u1, solve)

    def _first_hit(self, pos, tiers, mark, wb, t1, u1, solve) -> float | None:
        """The liquidation price when maintenance margin jumps at tier boundaries.

        From a safe mark, walk the tiers the adverse way to the first price where the
        margin balance meets the requirement: a root inside its own tier, or the boundary
        where the requirement jumps past the balance. From a mark already at or past
        liquidation, walk the favourable way to where the position becomes safe again
        (as the continuous formula's root then lies on the favourable side of the mark).
        """
        start = self.tier_for(pos, tiers, mark)
        i = next(k for k, t in enumerate(tiers) if t is start)
        # adverse = price falling for a long; linear notional falls with it, inverse rises
        step = -1 if (pos.sign > 0) != pos.inverse else 1
        safe = self._surplus(pos, start, mark, wb, t1, u1) > 0
        if not safe:
            step = -step
        q = pos.size
        return walk_tiers(
            tiers,
            i,
            step,
            safe,
            lambda t: solve(pos, t, wb, t1, u1),
            lambda t, price: self._surplus(pos, t, price, wb, t1, u1),
            lambda price: self.tier_for(pos, tiers, price),
            (lambda x: q / x) if pos.inverse else (lambda x: x / q),
        )

    def _surplus(self, pos, tier, price, wb, t1, u1) -> float:
        """Margin balance minus maintenance margin and closing fee at ``price`` in ``tier``."""
        amt = tier.maintenanceAmount if self.mmDeduction else 0.0
        rate = tier.maintenanceMarginRate
        if not pos.inverse:
            return linear_surplus(
                pos.size, pos.sign, pos.entryPrice, rate, amt, self.closeFeeRate, price, wb, t1, u1
            )
        mm = pos.size * rate / price - amt
        need = max(mm, 0.0) + self.closeFeeRate * self.notional(pos, price)
        return wb - t1 + u1 + self.unrealized_pnl(pos, price) - need

    def _linear_mark(
        self, pos: Position, tier: LeverageTier, wb: float, t1: float, u1: float
    ) -> float | None:
        return linear_mark_root(
            pos.size,
            pos.sign,
            pos.entryPrice,
            tier.maintenanceMarginRate + self.closeFeeRate,
            tier.maintenanceAmount if self.mmDeduction else 0.0,
            wb,
            t1,
            u1,
        )

    def _linear_entry(
        self, pos: Position, tier: LeverageTier, wb: float, t1: float, u1: float
    ) -> float | None:
        q, s, ep = pos.size, pos.sign, pos.entryPrice
        amt = tier.maintenanceAmount if self.mmDeduction else 0.0
        mm_e = max(q * ep * tier.maintenanceMarginRate - amt, 0.0)
        den = s * q - self.closeFeeRate * q
        if den == 0:
            return None
        return (t1 + mm_e - wb - u1 + s * q * ep) / den

    def _inverse(
        self, pos: Position, tier: LeverageTier, wb: float, t1: float, u1: float
    ) -> float | None:
        q, s = pos.size, pos.sign
        amt = tier.maintenanceAmount if self.mmDeduction else 0.0
        den = wb - t1 + u1 + amt + s * q / pos.entryPrice
        if den == 0:
            return None
        # A short's numerator is negative: its LP is positive when den < 0 too (the usual
        # case, margin below the notional in coin); callers drop p <= 0 ("--").
        return q * (tier.maintenanceMarginRate + self.closeFeeRate + s) / den

    # ----------------------------------------------------------------- capabilities

    def switch_feasibility(
        self,
        to_mode: str,
        has_position: bool,
        has_open_orders: bool,
        *,
        multi_collateral: bool = False,
    ) -> Feasibility:
        """Can the margin mode of a symbol be switched to ``to_mode`` right now?

        ``multi_collateral``: the account margins several coins (the snapshot has
        ``balances``); where the exchange allows cross only there
        (``capabilities.multiCollateralCrossOnly``) no switch to isolated is feasible."""
        c = self.capabilities
        codes = c.errorCodes
        cross_only = c.multiCollateralCrossOnly
        if multi_collateral and to_mode == "isolated" and cross_only is not None:
            return Feasibility(
                False,
                f"{self.title}'s multi-collateral mode allows cross margin only (error "
                f"{cross_only}: {codes.get(cross_only, 'isolated margin refused')}); "
                "leave it for single-asset mode first, or keep the position cross with a stop",
                cross_only,
            )
        if c.switchScope == "order":
            return Feasibility(
                True,
                f"{self.title} chooses the margin mode per order: "
                "place new orders in the target mode; existing positions keep theirs",
            )
        direction = "cross->isolated" if to_mode == "isolated" else "isolated->cross"
        if direction not in c.switchDirections and has_position:
            return Feasibility(
                False, f"{self.title} does not switch {direction} with an open position"
            )
        if has_position and c.switchWithPosition is False:
            code = next(
                (
                    k
                    for k, v in codes.items()
                    if "position" in v.lower() and "margin type" in v.lower()
                ),
                None,
            )
            return Feasibility(
                False,
                f"{self.title} refuses a margin-mode switch while a position is open"
                + (f" (error {code})" if code else "")
                + "; close or reduce the position, or hedge it, then switch",
                code,
            )
        if has_open_orders and c.switchWithOpenOrders is False:
            code = next((k for k, v in codes.items() if "open order" in v.lower()), None)
            return Feasibility(
                False,
                f"{self.title} refuses a margin-mode switch while orders are open"
                + (f" (error {code})" if code else "")
                + "; cancel them first",
                code,
            )
        if c.switchScope == "account":
            return Feasibility(
                True if not has_position else c.switchWithPosition,
                f"{self.title} switches margin mode for the whole account, not per symbol",
            )
        if has_position and c.switchWithPosition is None:
            return Feasibility(
                None,
                f"{self.title} does not document whether the switch is allowed "
                "with an open position; expect a refusal",
            )
        return Feasibility(True, "allowed")


# --------------------------------------------------------------------- fee rates as inputs

_FEE_MODELS: dict[tuple[int, float], MarginModel] = {}


def with_close_fee(model: MarginModel, rate: float) -> MarginModel:
    """``model`` counting ``rate`` as the closing fee in its trigger (cached per rate)."""
    if rate == model.closeFeeRate:
        return model
    key = (id(model), rate)
    got = _FEE_MODELS.get(key)
    if got is None or got.name != model.name:
        if len(_FEE_MODELS) > 256:  # a few tiers per account in practice; stay bounded
            _FEE_MODELS.clear()
        got = _FEE_MODELS[key] = replace(model, closeFeeRate=rate)
    return got


def _fee_rate(value: object, where: str) -> float | None:
    """A taker rate from the snapshot, or SnapshotError naming its JSON path."""
    if value is None:
        return None
    from riskguard.errors import Problem, SnapshotError

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"a taker fee rate must be a number, not {value!r}"
        raise SnapshotError([Problem(msg, f"$.{where}", "type")])
    rate = float(value)
    if not (0.0 <= rate < 0.1):  # 10 %: no exchange charges that; a percent given as a rate
        msg = f"taker fee rate {rate!r} is outside [0, 0.1) (a rate: 0.0005 = 0.05 %)"
        raise SnapshotError([Problem(msg, f"$.{where}", "range")])
    return rate


def close_fee_rate(model: MarginModel, snapshot: object, symbol: str) -> tuple[float, str]:
    """The closing-fee rate the model counts for ``symbol``, and where it came from:
    ``market`` (``markets[symbol].takerFeeRate``), ``account`` (``takerFeeRate``),
    ``default`` (the model's base rate) or ``none`` (the exchange's trigger has no fee)."""
    if not model.takerFeeInTrigger:
        return model.closeFeeRate, "none"
    m = getattr(snapshot, "markets", {}).get(symbol)
    rate = _fee_rate(
        (getattr(m, "extra", None) or {}).get("takerFeeRate"), f"markets[{symbol!r}].takerFeeRate"
    )
    if rate is not None:
        return rate, "market"
    rate = _fee_rate((getattr(snapshot, "extra", None) or {}).get("takerFeeRate"), "takerFeeRate")
    if rate is not None:
        return rate, "account"
    return model.closeFeeRate, "default"


def account_fee_model(model: MarginModel, snapshot: object) -> MarginModel:
    """``model`` with the snapshot's account-level taker rate, where the trigger counts one."""
    if not model.takerFeeInTrigger:
        return model
    rate = _fee_rate((getattr(snapshot, "extra", None) or {}).get("takerFeeRate"), "takerFeeRate")
    return model if rate is None else with_close_fee(model, rate)
