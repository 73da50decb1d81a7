"""The decision log: a hash-chained, append-only JSON Lines record of every decision.

``log`` holds the writer (structlog, flushed appends, concurrent writers, torn-tail repair)
and the verifier behind ``riskguard verify-log``.

May import: ``riskguard.errors`` and ``riskguard.model`` (redaction). It knows nothing of
policies or rules: it records what it is given.
"""
