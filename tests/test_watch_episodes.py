"""Episodes, not spam: the alert sequence of a breach, and its invariants under any history."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from riskguard.faces.watch.episodes import Breach, EpisodeBook

SEV = ("info", "warning", "error", "critical")


def b(rule="r", symbol="BTC/USDT:USDT", severity="error"):
    return Breach(rule, symbol, severity, "CODE", f"{rule} {severity}")


def test_open_remind_escalate_resolve_with_duration():
    book = EpisodeBook(reminder=10)
    assert [a.kind for a in book.update("acct", [b()], 0)] == ["open"]
    assert book.update("acct", [b()], 5) == []  # still open: silence
    assert [a.kind for a in book.update("acct", [b()], 11)] == ["remind"]
    (esc,) = book.update("acct", [b(severity="critical")], 12)
    assert (esc.kind, esc.severity) == ("escalate", "critical")
    assert book.update("acct", [b(severity="error")], 13) == []  # de-escalation is quiet
    (res,) = book.update("acct", [], 20)
    assert (res.kind, res.severity, res.duration) == ("resolve", "critical", 20)
    assert res.body.startswith("resolved after 20s")
    assert book.open == {}


def test_watcher_episodes_are_not_resolved_by_policy_decisions():
    book = EpisodeBook()
    book.raise_("acct", Breach("watch.blind", None, "critical", "WATCH_BLIND", "blind"), 0)
    assert book.update("acct", [], 1) == []  # a decision says nothing about being blind
    assert [a.kind for a in book.resolve("acct", "watch.blind", None, 2)] == ["resolve"]


def test_state_round_trip_keeps_an_episode_open_without_a_new_alert():
    book = EpisodeBook(reminder=100)
    book.update("acct", [b()], 0)
    again = EpisodeBook(100, [type(e).from_dict(e.to_dict()) for e in book.open.values()])
    assert again.update("acct", [b()], 50) == []
    assert [a.kind for a in again.update("acct", [], 60)] == ["resolve"]


history = st.lists(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.sampled_from([None, "X"]), st.sampled_from(SEV)),
        max_size=4,
    ),
    max_size=40,
)


@given(history)
def test_every_breach_alternates_open_and_resolve(rounds):
    book = EpisodeBook(reminder=1e9)
    per_key: dict = {}
    for t, breaches in enumerate(rounds):
        for a in book.update("acct", [b(r, s, sev) for r, s, sev in breaches], float(t)):
            per_key.setdefault((a.rule, a.symbol), []).append(a.kind)
    for key, kinds in per_key.items():
        lifecycle = [k for k in kinds if k in ("open", "resolve")]
        # open, resolve, open, resolve, ... never two opens (spam) or two resolves in a row
        assert lifecycle[::2] == ["open"] * len(lifecycle[::2])
        assert lifecycle[1::2] == ["resolve"] * len(lifecycle[1::2])
        still_open = ("acct", *key) in book.open
        assert still_open == (len(lifecycle) % 2 == 1)
        # an escalation only happens inside an open episode
        depth = 0
        for k in kinds:
            depth += {"open": 1, "resolve": -1}.get(k, 0)
            assert depth in (0, 1) and (k != "escalate" or depth == 1)
