"""Validate a bundle directory and run its suites, offline: no database, no server.

    manage.py bundle_test examples/claims-triage [--verbose]

Exit status: 0 when the bundle is valid and every suite passes, 1 on a validation error or a failing suite,
2 on a usage error (no such directory). The command never opens a database connection, so it works in CI
and while PostgreSQL is down.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from bundles.language.archive import BundleArchiveError, read_directory
from bundles.language.checks import validate_files
from bundles.language.compiler import compile_bundle
from bundles.language.digest import bundle_digest
from bundles.language.errors import BundleCompileError
from bundles.language.suites import format_report, run_suites

EXIT_FAILED = 1
EXIT_USAGE = 2

NOT_A_DIRECTORY = (
    "{path} is not a directory; give the path of a bundle directory (the one holding bundle.yaml)."
)
INVALID = "invalid bundle: {count} error(s)"
VALID = "valid: {name} {version} {digest} ({count} files)"
NOT_COMPILABLE = "the bundle cannot be compiled: {reason}"
SUITES_FAILED = "suites failed: {failed} of {total} suite(s) did not pass"
NO_SUITES = "warning: the bundle has no suites, so nothing proves its behaviour"
FILE_LINE = "  {path} ({size} B)"
DECISION_LINE = "  {suite}/{case}: {status}; fired: {fired}"


def format_bundle_error(error: dict) -> str:
    """Return a bundle error as `file:line:col: code: message (path)`, omitting unknown parts."""
    location = error.get("file") or "<bundle>"
    if error.get("line") is not None:
        location += f":{error['line']}"
        if error.get("column") is not None:
            location += f":{error['column']}"
    text = f"{location}: {error['code']}: {error['message']}"
    return f"{text} ({error['path']})" if error.get("path") else text


class Command(BaseCommand):
    help = (
        "Validate a bundle directory and run its suites offline (no database). Exit 0 pass, 1 fail, 2 usage."
    )
    requires_system_checks: list = []  # the checks may touch the database; this command never does

    def add_arguments(self, parser):
        parser.add_argument("directory", help="the bundle directory (holding bundle.yaml)")
        parser.add_argument(
            "--verbose", action="store_true", help="also list the files and each case's decision and policies"
        )

    def handle(self, *args, **options):
        directory = Path(options["directory"])
        if not directory.is_dir():
            raise CommandError(NOT_A_DIRECTORY.format(path=directory), returncode=EXIT_USAGE)
        try:
            files = read_directory(directory)
        except BundleArchiveError as error:
            self.fail_with_errors([bundle_error.to_dict() for bundle_error in error.errors])
        result = validate_files(files)
        if not result.valid:
            self.fail_with_errors([bundle_error.to_dict() for bundle_error in result.errors])
        digest = bundle_digest(result.content)
        manifest = result.manifest
        self.stdout.write(
            VALID.format(name=manifest["name"], version=manifest["version"], digest=digest, count=len(files))
        )
        if options["verbose"]:
            for path, text in sorted(files.items()):
                self.stdout.write(FILE_LINE.format(path=path, size=len(text.encode("utf-8"))))
        try:
            report = run_suites(compile_bundle(result.content, digest))
        except BundleCompileError as error:
            raise CommandError(NOT_COMPILABLE.format(reason=error), returncode=EXIT_FAILED) from None
        self.stdout.write(format_report(report), ending="")
        if options["verbose"]:
            self.write_decisions(report)
        if not report.suites:
            self.stderr.write(NO_SUITES)
        if not report.passed:
            failed = sum(not suite.passed for suite in report.suites)
            raise CommandError(
                SUITES_FAILED.format(failed=failed, total=len(report.suites)), returncode=EXIT_FAILED
            )

    def fail_with_errors(self, errors: list[dict]) -> None:
        """Print every error, then stop with exit status 1."""
        for error in errors:
            self.stdout.write(format_bundle_error(error))
        raise CommandError(INVALID.format(count=len(errors)), returncode=EXIT_FAILED)

    def write_decisions(self, report) -> None:
        """Print each case's decision status and the policies that fired."""
        self.stdout.write("decisions:")
        for suite in report.suites:
            for case in suite.cases:
                fired = ", ".join(case.fired) or "none"
                self.stdout.write(
                    DECISION_LINE.format(suite=suite.name, case=case.name, status=case.status, fired=fired)
                )
