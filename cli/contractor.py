"""contractor: the command-line client of the CONTRACTOR control-plane API, for CI jobs and operators.

An API client only (httpx): it imports no Django. ``contractor test`` is the one command that runs without a
server; it uses the repository's pure-Python ``bundles`` package (validation, suites).

Configuration comes from the environment:
    CONTRACTOR_URL       where the control plane listens (default http://127.0.0.1:8000)
    CONTRACTOR_TENANT    the tenant slug; requests carry ``Host: <tenant>.localhost``
    CONTRACTOR_HOST      the Host header to send instead (overrides CONTRACTOR_TENANT)
    CONTRACTOR_TOKEN     the API token, sent as ``Authorization: Token <token>``
    CONTRACTOR_PASSWORD  the password ``contractor login`` uses instead of prompting

Exit codes: see ``EXIT_CODES_HELP`` (also printed by ``--help`` and listed in cli/README.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TextIO

from cli.client import Output
from cli.commands import (
    DEFAULT_TOKEN_NAME,
    TOKEN_SCOPES,
    command_decide,
    command_gates_run,
    command_governance_decide,
    command_governance_list,
    command_login,
    command_promote,
    command_push,
    command_rollback,
    command_status,
    command_test,
    command_tokens_list,
    command_tokens_revoke,
)
from cli.errors import CliError

EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  refused: validation errors, gates failed, promotion rejected/cancelled/failed, API 4xx with an error
     code, a promotion rule (deciding your own request, cancelling someone else's)
  2  usage error (bad arguments, missing directory or bundle name, local tooling missing)
  3  authentication or permission error (HTTP 401/403: bad token, missing role or grant)
  4  not found (HTTP 404)
  5  server or network error, gate run error, or --wait timed out
"""


ENVIRONMENT_HELP = """\
environment:
  CONTRACTOR_URL       control plane URL (default http://127.0.0.1:8000)
  CONTRACTOR_TENANT    tenant slug: sends Host: <tenant>.localhost
  CONTRACTOR_HOST      Host header to send instead of <tenant>.localhost
  CONTRACTOR_TOKEN     API token (Authorization: Token <token>); get one with `contractor login --name N`
  CONTRACTOR_PASSWORD  password for `contractor login` (prompted when unset)
"""


PROGRAM_DESCRIPTION = (
    "Command-line client of the CONTRACTOR control plane: push, test, gates, promote, rollback."
)


DEFAULT_WAIT_SECONDS = 600.0


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    parser = argparse.ArgumentParser(
        prog="contractor",
        description=PROGRAM_DESCRIPTION,
        epilog=ENVIRONMENT_HELP + "\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", default=False, help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace, Output], int], help_text: str, **kw: Any):
        sub = commands.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=help_text,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kw,
        )
        sub.set_defaults(handler=handler)
        return sub

    push = command("push", command_push, "push a bundle directory as a new version")
    push.add_argument("directory", metavar="DIR")
    push.add_argument("--name", help="bundle name (default: name in DIR/bundle.yaml)")

    test = command("test", command_test, "validate a bundle directory and run its suites locally (no server)")
    test.add_argument("directory", metavar="DIR")

    gates = commands.add_parser("gates", help="quality gates of a version")
    gate_commands = gates.add_subparsers(dest="gates_command", required=True, metavar="COMMAND")
    gates_run = gate_commands.add_parser(
        "run",
        parents=[common],
        help="run the gates (every suite) of a version",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gates_run.set_defaults(handler=command_gates_run)
    gates_run.add_argument("bundle", metavar="BUNDLE")
    gates_run.add_argument("version", metavar="VERSION")
    add_wait_options(gates_run, "until the gate run passed, failed or errored")

    promote = command("promote", command_promote, "request the promotion of a version to an environment")
    promote.add_argument("bundle", metavar="BUNDLE")
    promote.add_argument("version", metavar="VERSION")
    promote.add_argument(
        "--to", required=True, metavar="ENV", help="target environment (staging, current, ...)"
    )
    promote.add_argument("--justification", required=True, metavar="TEXT")
    add_wait_options(promote, "until the request is promoted, rejected, cancelled or failed")

    for decision, help_text in (
        ("approve", "approve a promotion request"),
        ("reject", "reject a promotion request"),
    ):
        decide = command(decision, command_decide, help_text)
        decide.set_defaults(decision=decision)
        decide.add_argument("id", metavar="ID")
        decide.add_argument("--comment", default="")
    cancel = command("cancel", command_decide, "cancel your promotion request")
    cancel.set_defaults(decision="cancel")
    cancel.add_argument("id", metavar="ID")

    rollback = command("rollback", command_rollback, "point an environment back to an earlier version")
    rollback.add_argument("bundle", metavar="BUNDLE")
    rollback.add_argument("--env", required=True, metavar="ENV")
    rollback.add_argument("--to", metavar="VERSION", help="version to restore (default: the one before)")
    rollback.add_argument("--justification", required=True, metavar="TEXT")

    status = command("status", command_status, "show the live version of bundles per environment")
    status.add_argument("bundle", metavar="BUNDLE", nargs="?")

    login = command(
        "login", command_login, "get an API token (password from CONTRACTOR_PASSWORD or prompted)"
    )
    login.add_argument("--username", required=True, metavar="U")
    login.add_argument(
        "--name", default=DEFAULT_TOKEN_NAME, help="a name for the new token (e.g. the CI job)"
    )
    login.add_argument(
        "--scope",
        action="append",
        choices=TOKEN_SCOPES,
        help="a scope of the token (repeat; default: the scopes your roles use)",
    )
    login.add_argument("--expires-in-days", type=int, metavar="DAYS", help="lifetime (default 90)")

    tokens = commands.add_parser("tokens", help="your personal API tokens")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True, metavar="COMMAND")
    for name, handler, help_text in (
        ("list", command_tokens_list, "list your tokens (--all: every member's, for admins)"),
        ("revoke", command_tokens_revoke, "revoke a token by id"),
    ):
        sub = token_commands.add_parser(
            name,
            parents=[common],
            help=help_text,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        if name == "list":
            sub.add_argument("--all", action="store_true", help="every member's tokens (admins)")
        else:
            sub.add_argument("id", metavar="ID")

    governance = commands.add_parser("governance", help="governance change requests (admins)")
    governance_commands = governance.add_subparsers(
        dest="governance_command", required=True, metavar="COMMAND"
    )
    for name, handler, help_text in (
        ("list", command_governance_list, "list pending governance changes (--all: every change)"),
        ("approve", command_governance_decide, "approve another admin's governance change"),
        ("reject", command_governance_decide, "reject a governance change (--comment required)"),
    ):
        sub = governance_commands.add_parser(
            name,
            parents=[common],
            help=help_text,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler, decision=name)
        if name == "list":
            sub.add_argument("--all", action="store_true", help="every change, not only the pending ones")
        else:
            sub.add_argument("id", metavar="ID")
            sub.add_argument("--comment", default="")
    return parser


def add_wait_options(parser: argparse.ArgumentParser, until: str) -> None:
    """Add --wait and --timeout to a command that starts asynchronous work."""
    parser.add_argument("--wait", action="store_true", help=f"wait {until}")
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_WAIT_SECONDS,
        metavar="S",
        help=f"seconds to wait at most (default {DEFAULT_WAIT_SECONDS:g}; exit 5 when exceeded)",
    )


def positive_seconds(value: str) -> float:
    """Return a positive number of seconds parsed from the command line."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value!r}")
    return seconds


def main(argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run one contractor command and return its exit code."""
    args = build_parser().parse_args(argv)
    out = Output(json_mode=args.json, stdout=stdout, stderr=stderr)
    try:
        return args.handler(args, out)
    except CliError as error:
        out.error(error)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
