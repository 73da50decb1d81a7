"""The ``riskguard`` command.

Each sub-command lives in ``riskguard/commands/<name>.py`` with ``add_parser(sub)`` and
``run(args) -> int``. Exit codes: 0 ok, 1 policy outcome (denied / violations), 2 bad
input or usage (a clear message on stderr, never a traceback), 3 internal error.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from riskguard.errors import PluginFault, RiskguardError

# (command, module) in the order ``--help`` lists them.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("check", "check"),
    ("audit", "audit"),
    ("metrics", "metrics"),
    ("validate", "validate"),
    ("test", "policytest"),
    ("explain", "explain"),
    ("schema", "schema"),
    ("plugins", "plugins"),
    ("verify-log", "verify_log"),
    ("generate", "generate"),
    ("serve", "serve"),
    ("watch", "watch"),
    ("simulate", "simulate"),
)

EXIT_OK, EXIT_POLICY, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader left


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only`` (a command's name) just that command's parser,
    so a one-shot command imports its own module and not every other command's."""
    parser = _Parser(
        prog="riskguard",
        description="Risk policies for leveraged crypto-futures accounts: pre-trade checks, "
        "bot guardrails and snapshot audits.",
        epilog="Exit codes: 0 ok, 1 denied/resized or violations found, 2 bad input or usage, "
        "3 internal error (the decision is deny), 141 stdout closed early (broken pipe). "
        "Run 'riskguard COMMAND --help' for details.",
    )
    from riskguard import __version__
    from riskguard._pure import build

    parser.add_argument(
        "--version", action="version", version=f"riskguard {__version__} ({build()})"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, modname in COMMANDS:
        if only is not None and name != only:
            continue
        try:
            mod = importlib.import_module(f"riskguard.faces.commands.{modname}")
        except ModuleNotFoundError as exc:
            if exc.name == f"riskguard.faces.commands.{modname}":
                continue  # command not built yet
            raise
        p = mod.add_parser(sub, name)
        p.set_defaults(_run=mod.run)
    return parser


def print_problems(exc: RiskguardError) -> None:
    for p in exc.problems:
        print(f"error: {p}", file=sys.stderr)


def _command_of(argv: list[str]) -> str | None:
    """The sub-command ``argv`` names (the top level has only flags), if it is a known one."""
    for a in argv:
        if not a.startswith("-"):
            return a if any(a == name for name, _m in COMMANDS) else None
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(_command_of(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        code = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit flush
        return code
    except PluginFault as exc:  # plugin code failed: nothing was decided, so nothing allowed
        for p in exc.problems:
            print(f"error: PLUGIN_ERROR: {p}", file=sys.stderr)
        return EXIT_INTERNAL
    except RiskguardError as exc:
        print_problems(exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _broken_pipe()
    except Exception as exc:  # last line of defence: no traceback, exit 3
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(
            "this is a bug in riskguard or a plugin; rerun with RISKGUARD_DEBUG=1 for a traceback",
            file=sys.stderr,
        )
        import os

        if os.environ.get("RISKGUARD_DEBUG"):
            raise
        return EXIT_INTERNAL


def _broken_pipe() -> int:
    """The reader of stdout went away (``riskguard audit ... | head -1``).

    Exit as a process killed by SIGPIPE does in a shell (128 + 13), without a traceback, so
    ``set -o pipefail`` still sees a failure: the output, and the outcome it carried, were
    not delivered. stdout is pointed at /dev/null first so the interpreter's final flush
    does not raise again (the recipe of the Python docs, "Note on SIGPIPE")."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout already closed or not a real file
        pass
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
