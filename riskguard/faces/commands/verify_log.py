"""``riskguard verify-log FILE``: check a hash-chained audit log for tampering."""

from __future__ import annotations

import argparse
import os

from riskguard.decisionlog.log import verify_log
from riskguard.errors import RiskguardError
from riskguard.faces.commands._common import print_json

DESCRIPTION = """\
Check an audit log written by riskguard (JSON Lines, one record per decision, each
record carrying seq, prev and hash). Reads the whole file and stops at the first
problem: a record edited (hash mismatch), deleted or inserted (seq gap or repeat),
reordered, a prev link that does not match, bad JSON, missing fields, or a torn
(partial) last line left by a crash.

A plain SHA-256 chain cannot tell a genuine log from one whose tail was rewritten
and re-hashed by someone with write access. Two things catch that:
  --key-file/--key-env  the log was written with an HMAC key (AuditLog(key=...)):
                        without the key nobody can forge a record;
  --expect-head HASH    a head hash you kept elsewhere (an anchor): the log must end
                        at exactly that record; also catches a truncated log.
"""

EPILOG = """\
exit codes: 0 intact (prints the record count and head hash), 1 tampered or torn
(prints the first bad line and seq and what is wrong), 2 unreadable file, missing
key or bad usage.

examples:
  riskguard verify-log audit.jsonl
  riskguard verify-log audit.jsonl --key-env RISKGUARD_AUDIT_KEY
  riskguard verify-log audit.jsonl --expect-head sha256:4f0c... --json
"""


def add_parser(sub, name):
    p = sub.add_parser(
        name,
        help="verify a hash-chained audit log (edits, deletions, reordering, truncation)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="the audit log (JSON Lines)")
    key = p.add_mutually_exclusive_group()
    key.add_argument(
        "--key-file",
        metavar="F",
        help="read the HMAC key from file F (its bytes, without a trailing newline)",
    )
    key.add_argument(
        "--key-env",
        metavar="VAR",
        help="read the HMAC key from environment variable VAR (UTF-8)",
    )
    p.add_argument(
        "--expect-head",
        metavar="HASH",
        help="the hash the log must end with (an anchor recorded elsewhere, e.g. the 'hash' "
        "of the last record as seen at the end of a trading day)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def _read_key(args) -> bytes | None:
    if args.key_file:
        try:
            with open(args.key_file, "rb") as f:
                key = f.read().rstrip(b"\r\n")
        except OSError as exc:
            raise RiskguardError(
                f"cannot read key file: {exc.strerror}", file=args.key_file
            ) from exc
        if not key:
            raise RiskguardError("the key file is empty", file=args.key_file)
        return key
    if args.key_env:
        value = os.environ.get(args.key_env)
        if not value:
            raise RiskguardError(f"environment variable {args.key_env} is not set or empty")
        return value.encode()
    return None


def run(args) -> int:
    report = verify_log(args.file, key=_read_key(args), expect_head=args.expect_head)
    if args.json:
        print_json({"file": args.file, **report.to_dict()})
        return 0 if report.ok else 1
    if report.ok:
        head = report.head or "(empty log)"
        print(f"{args.file}: ok: {report.records} records, head {head}")
        return 0
    where = f"{args.file}:{report.first_bad_line}" if report.first_bad_line else f"{args.file}"
    seq = f" seq {report.first_bad_seq}:" if report.first_bad_seq is not None else ""
    print(f"{where}:{seq} {report.problem}")
    print(f"  {report.records} good records before it; last good head {report.head or '(none)'}")
    return 1
