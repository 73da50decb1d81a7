"""Bearer tokens, stored hashed.

The token file holds one token a line, as its SHA-256, never the token itself::

    # riskguard serve --token-file tokens.txt
    sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  bot-1  accounts=main,alt
    sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752  ops    admin

Fields after the hash: a name (for logs and metrics, never the token), then flags:
``admin`` (may ``PUT /v1/trading-state``) and ``accounts=a,b`` (may only name or submit
snapshots of those accounts; without it, any account). ``riskguard serve --hash-token``
reads a token on stdin and prints its line. Tokens should be long random strings (e.g.
``openssl rand -hex 32``): with that much entropy a plain SHA-256 is what GitHub and
others store, and a salted slow hash would cost every request milliseconds.

Refusals say as little as possible: a missing or unknown token is 401 with a
``WWW-Authenticate: Bearer`` challenge (RFC 6750); a known token asking for an account it
may not use is 403 whether or not that account has a snapshot stored, so a token cannot
probe which accounts exist.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from riskguard.errors import Problem, RiskguardError

_HASH = re.compile(r"^sha256:([0-9a-f]{64})$")
_ACCOUNT_NAME = re.compile(r"^[^\s,]+$")


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    admin: bool = False
    accounts: frozenset[str] | None = None  # None: every account

    def may_use(self, account: str) -> bool:
        return self.accounts is None or account in self.accounts


#: The caller when no token file is configured: reads and checks, never admin.
ANONYMOUS = Principal("anonymous")


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def load_tokens(path: str | Path) -> dict[bytes, Principal]:
    """Parse a token file; every bad line is reported with its line number (exit 2)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RiskguardError(
            f"cannot read the token file: {exc.strerror}", file=str(path)
        ) from None
    out: dict[bytes, Principal] = {}
    problems: list[Problem] = []

    def bad(lineno: int, msg: str) -> None:
        problems.append(Problem(msg, code="invalid_token_file", file=str(path), line=lineno))

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        m = _HASH.match(fields[0])
        if m is None:
            bad(
                lineno,
                "expected 'sha256:<64 hex digits> [name] [admin] [accounts=a,b]'; store the "
                "token's hash, not the token (riskguard serve --hash-token prints it)",
            )
            continue
        name = f"token-{lineno}"
        admin = False
        accounts: frozenset[str] | None = None
        for i, f in enumerate(fields[1:]):
            if f == "admin":
                admin = True
            elif f.startswith("accounts="):
                names = [a for a in f[len("accounts=") :].split(",") if a]
                if not names or not all(_ACCOUNT_NAME.match(a) for a in names):
                    bad(lineno, f"'{f}': expected accounts=name[,name...]")
                accounts = frozenset(names)
            elif i == 0:
                name = f
            else:
                bad(lineno, f"unknown flag {f!r} (known: admin, accounts=a,b)")
        digest = bytes.fromhex(m.group(1))
        if digest in out:
            bad(lineno, "this token hash is listed twice")
        out[digest] = Principal(name, admin, accounts)
    if problems:
        raise RiskguardError(problems)
    if not out:
        raise RiskguardError(
            "the token file lists no token: every request would be refused", file=str(path)
        )
    return out


class Authenticator:
    """Maps an ``Authorization`` header to a :class:`Principal` (None: refused)."""

    def __init__(self, tokens: dict[bytes, Principal] | None) -> None:
        self.tokens = tokens

    @property
    def required(self) -> bool:
        return self.tokens is not None

    def principal(self, header: str | None) -> Principal | None:
        if self.tokens is None:
            return ANONYMOUS
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        # A lookup by the token's digest: its timing says nothing useful about the token,
        # since a caller cannot choose SHA-256 outputs.
        return self.tokens.get(digest)
