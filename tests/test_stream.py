"""`riskguard check --stream` as a bot in another language drives it: JSON Lines in,
one flushed decision a line out, error lines instead of exits, one guard for the stream."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys

from .conftest import POLICIES, ROOT, run_cli, snapshot_doc

DEFAULT = str(POLICIES / "default.yaml")
SOL = {"symbol": "SOL/USDT:USDT", "side": "buy", "amount": 10, "leverage": 5, "stopLossPrice": 140}

# A stateful rule: counts the orders it has seen in the guard's state.
SEQ_PLUGIN = """
from riskguard import hookimpl
from riskguard.rules.base import BaseRule, RuleType

class Seq(BaseRule):
    def evaluate(self, ctx):
        if ctx.order is None:
            return
        n = ctx.state["seen"] = ctx.state.get("seen", 0) + 1
        self.violate(ctx, "SEQ_SEEN", f"order {n}", observed=n, severity="info")

@hookimpl
def riskguard_rule_types(register):
    register(RuleType("test_seq", {"type": "object"}, Seq, "counts orders", {"SEQ_SEEN": "n"}))
"""


def lines(*objs) -> str:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs)


def stream(*objs, args=()):
    r = run_cli("check", "--stream", "-p", DEFAULT, *args, input=lines(*objs))
    assert r.returncode == 0, r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()]


def test_one_decision_per_line_with_ids_and_account_reuse():
    out = stream(
        {"id": "a", "account": "main", "snapshot": snapshot_doc(), "order": SOL},
        {"id": "b", "account": "main", "order": {**SOL, "amount": 200}},
        {"id": "c", "account": "main"},
        {"id": "d", "order": SOL},  # the only stored account
    )
    assert [o["id"] for o in out] == ["a", "b", "c", "d"]
    assert [o["line"] for o in out] == [1, 2, 3, 4]
    assert [o["decision"] for o in out] == ["allow", "resize", "allow", "allow"]
    assert out[1]["maxAllowedAmount"] < 200
    assert all(o["snapshot"]["ref"].startswith("stdin:") for o in out)
    assert "metrics" not in out[0]


def test_malformed_lines_get_error_lines_and_the_stream_goes_on():
    bad_snap = snapshot_doc(walletBalance="lots")
    out = stream(
        "this is not json",
        '{"id": 2, "snapshot": {"walletBalance": NaN}}',
        "[1, 2]",
        {"id": 4, "snapshot": bad_snap},
        {"id": 5, "account": "nobody", "order": SOL},
        {"id": 6, "order": SOL},
        {"id": 7, "account": "main", "snapshot": snapshot_doc(), "order": {**SOL, "side": "hold"}},
        {"id": 8, "account": "main", "order": SOL},
        "",
        {"id": 9, "control": {"tradingState": "paused"}},
    )
    codes = [o.get("error", {}).get("code") for o in out]
    assert codes == [
        "invalid_json",
        "invalid_json",
        "invalid_message",
        "invalid_snapshot",
        "unknown_account",
        "missing_snapshot",
        "invalid_order",
        None,
        "invalid_control",
    ]
    assert [o["line"] for o in out] == [1, 2, 3, 4, 5, 6, 7, 8, 10]
    assert out[3]["error"]["problems"][0]["path"] == "$.snapshot.walletBalance"
    assert out[6]["error"]["problems"][0]["path"] == "$.order.side"
    assert out[7]["decision"] == "allow"  # line 7's snapshot was stored before its order failed


def test_one_guard_for_the_whole_stream(tmp_path):
    plugin = tmp_path / "seq.py"
    plugin.write_text(SEQ_PLUGIN)
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "apiVersion: riskguard/v1\nkind: Policy\nmetadata: {name: s}\n"
        "spec:\n  rules: [{id: seq, type: test_seq, severity: info}]\n"
    )
    r = run_cli(
        "check", "--stream", "-p", str(policy), "--plugin", str(plugin),
        input=lines(*({"account": "m", "snapshot": snapshot_doc(), "order": SOL} for _ in range(4))),
    )  # fmt: skip
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [o["violations"][0]["observed"] for o in out] == [1, 2, 3, 4]


def test_kill_switch_and_preloaded_snapshot(tmp_path):
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(snapshot_doc(account="main")))
    out = stream(
        {"order": SOL},
        {"id": "k", "control": {"tradingState": "halted", "reason": "test"}},
        {"account": "main", "order": SOL},
        args=("-s", str(snap)),
    )
    assert out[0]["decision"] == "allow"
    assert out[1] == {
        "ok": True,
        "tradingState": "halted",
        "previous": "active",
        "line": 2,
        "id": "k",
    }
    assert out[2]["snapshot"]["account"] == "main"


def test_audit_log_gets_every_decision(tmp_path):
    log = tmp_path / "audit.jsonl"
    stream(
        *({"snapshot": snapshot_doc(), "order": SOL} for _ in range(3)),
        args=("--audit-log", str(log)),
    )
    assert len(log.read_text().splitlines()) == 3


def test_answers_are_flushed_line_by_line():
    """A bot waits for each answer before sending the next order: nothing may sit in a buffer."""
    p = subprocess.Popen(
        [sys.executable, "-m", "riskguard", "check", "--stream", "-p", DEFAULT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        for i in range(3):
            p.stdin.write(json.dumps({"id": i, "snapshot": snapshot_doc(), "order": SOL}) + "\n")
            p.stdin.flush()
            ready, _, _ = select.select([p.stdout], [], [], 60)
            assert ready, "no answer while the stream is still open"
            assert json.loads(p.stdout.readline())["id"] == i
    finally:
        p.stdin.close()
        p.wait(timeout=60)
    assert p.returncode == 0


def test_stream_needs_no_snapshot_but_check_does():
    r = run_cli("check", "-p", DEFAULT)
    assert r.returncode == 2 and "--snapshot" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("check", "--stream", "-p", DEFAULT, "--order", "x.json", input="")
    assert r.returncode == 2 and "--stream" in r.stderr


def test_a_bound_is_printed_at_one_precision_on_every_line():
    """Issue 13 item 9: a resize and an allow of the same account gave the same bound at
    two precisions (0.2471… floored for the resize, the raw float for the allow)."""
    snap = json.loads((ROOT / "examples" / "snapshots" / "binance-two-cross.json").read_text())
    buy = {
        "symbol": "BTC/USDT:USDT",
        "side": "buy",
        "type": "limit",
        "price": 61000,
        "leverage": 10,
    }
    out = stream(
        {"id": 1, "account": "main", "snapshot": snap, "order": {**buy, "amount": 0.3}},
        {"id": 2, "account": "main", "order": {**buy, "amount": 0.1}},
    )
    assert [o["decision"] for o in out] == ["resize", "allow"]
    assert out[0]["maxAllowedAmount"] == out[1]["maxAllowedAmount"]
    assert len(repr(out[1]["maxAllowedAmount"]).replace("0.", "", 1)) <= 8
    assert out[0]["approvedAmount"] == out[0]["maxAllowedAmount"]
    assert out[1]["approvedAmount"] == 0.1


def test_a_malformed_line_names_the_streams_line_not_the_parsers():
    out = stream({"id": 1, "snapshot": snapshot_doc()}, "", "", '{"id": 4, "order": }')
    err = out[1]["error"]
    assert out[1]["line"] == 4
    assert err["code"] == "invalid_json"
    assert err["message"].startswith("line 4, column ")
    assert "line 1" not in err["message"]
