"""Secret redaction: ``redact`` and the structlog ``redact_processor``."""

from __future__ import annotations

import copy
import json

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from riskguard.model.redact import REDACTED, is_secret_key, redact, redact_processor


@pytest.mark.parametrize(
    "key",
    [
        "apiKey",
        "APIKEY",
        "api_key",
        "API-KEY",
        "secret",
        "Secret",
        "password",
        "passphrase",
        "token",
        "privateKey",
        "private_key",
        "twofa",
        "apiSecret",
        "secretKey",
        "accessToken",
        "refresh_token",
        "walletPrivateKey",
        "exchangePassword",
    ],
)
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    ["uid", "login", "walletAddress", "decisionId", "policy", "digest", "symbol", "tokens", 7],
)
def test_not_secret_keys(key):
    assert not is_secret_key(key)


def test_nested_dicts_lists_and_tuples():
    doc = {
        "account": "main",
        "exchange": {"id": "binance", "apiKey": "AK-123", "secret": "S-456", "uid": "u1"},
        "accounts": [
            {"name": "a", "credentials": {"API_KEY": "x1", "Password": "p1"}},
            ({"token": "t1", "n": 1},),
        ],
        "passphrase": None,
    }
    before = copy.deepcopy(doc)
    out = redact(doc)
    assert doc == before  # the input is never changed
    assert out["exchange"] == {
        "id": "binance",
        "apiKey": REDACTED,
        "secret": REDACTED,
        "uid": "u1",
    }
    assert out["accounts"][0]["credentials"] == {"API_KEY": REDACTED, "Password": REDACTED}
    assert isinstance(out["accounts"][1], tuple)
    assert out["accounts"][1][0] == {"token": REDACTED, "n": 1}
    assert out["passphrase"] is None  # None reveals nothing and is kept
    text = json.dumps(out)
    for secret in ("AK-123", "S-456", "x1", "p1", "t1"):
        assert secret not in text


def test_a_secret_key_hides_whole_values():
    out = redact({"secret": {"nested": "value"}, "token": ["a", "b"]})
    assert out == {"secret": REDACTED, "token": REDACTED}


def test_no_secret_returns_the_same_object():
    doc = {"decision": "allow", "policy": {"name": "default"}, "violations": [{"rule": "x"}]}
    assert redact(doc) is doc
    assert redact([1, 2, {"a": 1}]) is not None
    assert redact("apiKey") == "apiKey"  # a string value is not a key
    assert redact(42) == 42


def test_result_is_a_deep_copy_when_something_was_redacted():
    doc = {"secret": "s", "nested": {"list": [1, {"x": 1}]}}
    out = redact(doc)
    out["nested"]["list"][1]["x"] = 2
    out["nested"]["list"].append(3)
    assert doc == {"secret": "s", "nested": {"list": [1, {"x": 1}]}}


def test_structlog_processor_in_a_private_chain():
    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[redact_processor, structlog.processors.JSONRenderer(sort_keys=True)],
        wrapper_class=structlog.BoundLogger,
        context_class=dict,
    )
    line = log.msg("login", exchange={"apiKey": "AK-1", "secret": "S-1"}, user="bob")
    rec = json.loads(line)
    assert rec == {
        "event": "login",
        "exchange": {"apiKey": REDACTED, "secret": REDACTED},
        "user": "bob",
    }


def test_processor_without_secrets_passes_the_dict_through():
    ed = {"event": "decision", "decision": "allow"}
    assert redact_processor(None, "msg", ed) is ed


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["a", "b", "apiKey", "secret", "uid", "TOKEN", "x_password", "n"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


def _secret_values(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if is_secret_key(k):
                yield v
            else:
                yield from _secret_values(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _secret_values(v)


@given(json_values)
def test_property_no_secret_survives(doc):
    before = copy.deepcopy(doc)
    out = redact(doc)
    assert doc == before
    assert all(v is None or v == REDACTED for v in _secret_values(out))
    if all(v is None for v in _secret_values(doc)):
        assert out is doc
