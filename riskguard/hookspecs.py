"""riskguard's extension API: the pluggy hook specifications.

Every built-in rule type, margin model, action sink and snapshot source is itself a
plugin implementing these hooks (see ``riskguard.engine.plugins.DEFAULT_PLUGINS``), so a third
party has exactly the power the core has. Registration hooks receive a ``register``
callable instead of returning lists (as in simonw/llm): the core validates and
de-duplicates what is registered, and the hook signatures stay stable as options grow.

pluggy runs at load and compile time only. A compiled policy is a tuple of plain
callables; the per-decision hot path never goes through the plugin manager.

Write a plugin::

    from riskguard import hookimpl

    @hookimpl
    def riskguard_rule_types(register):
        register(RuleType(name="max_positions", ...))

and load it with ``--plugin my_plugin.py``, ``Guard(..., plugins=[...])`` or an entry
point in the ``riskguard`` group. ``plugins/example_rule.py`` is a complete worked example.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("riskguard")
hookimpl = pluggy.HookimplMarker("riskguard")


# ---- registration hooks: called once per process when the registry is built ----------


@hookspec
def riskguard_rule_types(register: Any) -> None:
    """Register policy rule types.

    Called once, when the plugin registry is first built (before any policy compiles).

    :param register: call ``register(rule_type)`` with a
        :class:`riskguard.rules.base.RuleType` for each rule type: its ``name`` (the
        ``type:`` in YAML), its ``params`` JSON Schema (composed into the policy schema),
        its reason ``codes`` and a ``compile(spec) -> Rule`` factory. A name registered
        twice raises :class:`riskguard.errors.PluginError` naming both plugins.
    :return: nothing; return values are ignored.
    """


@hookspec
def riskguard_margin_models(register: Any) -> None:
    """Register exchange margin models.

    Called once, when the plugin registry is first built.

    :param register: call ``register(model)`` with a
        :class:`riskguard.margin.base.MarginModel` — its ``name`` is the snapshot's
        ``exchange`` value (``binance``, ``bybit``, …). The model carries its parameters
        (maintenance basis, tier unit, closing-fee rate), its source and its capability
        facts (may the margin mode be switched with a position open, error codes).
    :return: nothing.
    """


@hookspec
def riskguard_action_sinks(register: Any) -> None:
    """Register places actions and decisions can be sent to.

    Called once, when the plugin registry is first built.

    :param register: call ``register(sink)`` with a :class:`riskguard.engine.sinks.ActionSink`:
        a ``name`` a policy or CLI can select and an ``open(options) -> callable`` whose
        result is called with each :class:`riskguard.engine.decision.Decision`. Sinks must not
        raise into the engine; an exception is logged and the decision stands.
    :return: nothing.
    """


@hookspec
def riskguard_snapshot_sources(register: Any) -> None:
    """Register sources of snapshots (files, JSON Lines, a live exchange, …).

    Called once, when the plugin registry is first built.

    :param register: call ``register(source)`` with a
        :class:`riskguard.engine.sources.SnapshotSource`: a ``name``, a ``matches(location) ->
        bool`` test, and ``open(location) -> Iterator[(ref, dict)]`` yielding raw snapshot
        documents with a reference (``file:line``) for error messages.
    :return: nothing.
    """


# ---- per-snapshot hook: gathered at compile time, called directly on the hot path -----


@hookspec
def riskguard_enrich_snapshot(snapshot: Any) -> dict[Any, Any] | None:
    """Derive market data a rule may need, before rules run.

    Called once per evaluated snapshot, after validation and before metrics, in plugin
    registration order. Implementations are collected when a policy compiles and called
    as plain functions (no pluggy dispatch per decision). They must be pure and fast.

    :param snapshot: the :class:`riskguard.model.snapshot.Snapshot` being evaluated.
    :return: ``None``, or ``{symbol: {field: value}}`` — values merged into the context's
        market data (e.g. ``{"BTC/USDT:USDT": {"atrPct": 2.4}}``). Values the snapshot
        already carries win over derived ones. An exception fails the decision closed.
    """
