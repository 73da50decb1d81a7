"""Shared fixtures: CLI runner (a real subprocess), snapshot builders, hypothesis profiles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
POLICIES = ROOT / "policies"
EXAMPLES = ROOT / "examples"

# Bounded property runs: CI keeps the whole suite in a few minutes on 2 cores.
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("deep", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test a compiled module whose source was edited since it was built: the
    extension would run, not the edit (docs/performance.md)."""
    from riskguard._pure import stale_modules

    stale = stale_modules()
    if stale:
        raise pytest.UsageError(
            "compiled modules are older than their source: "
            + ", ".join(stale)
            + " — run `pip install -e '.[dev]'` again to recompile, "
            "or set RISKGUARD_PURE=1 to test the source"
        )


# The compiled-policy cache of every CLI run the tests start goes to a directory of this run,
# never the user's ~/.cache (the cache's own tests point it elsewhere explicitly).
os.environ.setdefault("RISKGUARD_CACHE_DIR", tempfile.mkdtemp(prefix="riskguard-test-cache-"))


def run_cli(*args: str, input: str | None = None, env: dict | None = None, cwd: Path | None = None):
    """Run ``python -m riskguard ARGS`` as a user would; returns CompletedProcess (text)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "riskguard", *args],
        capture_output=True,
        text=True,
        input=input,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=120,
    )


@pytest.fixture
def cli():
    return run_cli


def snapshot_doc(**over) -> dict:
    """A small valid Binance snapshot: one cross BTC long with a stop, one isolated ETH short."""
    doc = {
        "schemaVersion": 1,
        "account": "test",
        "exchange": "binance",
        "timestamp": "2026-11-24T12:00:00Z",
        "settle": "USDT",
        "walletBalance": 10000.0,
        "positions": [
            {
                "symbol": "BTC/USDT:USDT",
                "side": "long",
                "contracts": 0.05,
                "entryPrice": 60000,
                "markPrice": 61000,
                "leverage": 10,
                "marginMode": "cross",
                "stopLossPrice": 57000,
            },
            {
                "symbol": "ETH/USDT:USDT",
                "side": "short",
                "contracts": 1,
                "entryPrice": 3000,
                "markPrice": 2950,
                "leverage": 10,
                "marginMode": "isolated",
                "isolatedMargin": 300,
                "stopLossPrice": 3100,
            },
        ],
        "markets": {"SOL/USDT:USDT": {"markPrice": 150.0}},
    }
    doc.update(over)
    return doc


@pytest.fixture
def write_json(tmp_path):
    def _w(name: str, obj) -> Path:
        p = tmp_path / name
        p.write_text(json.dumps(obj))
        return p

    return _w
