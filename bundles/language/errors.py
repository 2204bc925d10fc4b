"""The errors of the bundle language and their stable codes, like Django's system check ids."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from policies.exceptions import CEL_TOO_EXPENSIVE as POLICY_CEL_TOO_EXPENSIVE

# Reading files (bundles.language.archive).
BAD_ARCHIVE = "bad_archive"
ARCHIVE_TOO_LARGE = "archive_too_large"
TOO_MANY_FILES = "too_many_files"
FILE_TOO_LARGE = "file_too_large"
PATH_TRAVERSAL = "path_traversal"
ABSOLUTE_PATH = "absolute_path"
LINK_NOT_ALLOWED = "link_not_allowed"
SPECIAL_FILE = "special_file"
NOT_UTF8 = "not_utf8"
UNEXPECTED_FILE = "unexpected_file"

# Checking files (bundles.language.documents and bundles.language.checks).
YAML_SYNTAX = "yaml_syntax"
YAML_ALIAS = "yaml_alias"
DUPLICATE_KEY = "duplicate_key"
NOT_A_MAPPING = "not_a_mapping"
MISSING_FILE = "missing_file"
UNKNOWN_FIELD = "unknown_field"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
INVALID_VALUE = "invalid_value"
BAD_SEMVER = "bad_semver"
DUPLICATE_NAME = "duplicate_name"
UNKNOWN_CONCEPT = "unknown_concept"
UNKNOWN_ENTITY = "unknown_entity"
UNKNOWN_TEMPLATE = "unknown_template"
UNKNOWN_POLICY = "unknown_policy"
UNKNOWN_PIPELINE = "unknown_pipeline"
UNKNOWN_FIELD_REFERENCE = "unknown_field_reference"
CEL_SYNTAX = "cel_syntax"
CEL_UNKNOWN_VARIABLE = "cel_unknown_variable"
CEL_TOO_EXPENSIVE = POLICY_CEL_TOO_EXPENSIVE  # the policy language's own code, reported by validation
JINJA_SYNTAX = "jinja_syntax"
TEMPLATE_VARIABLE_UNDEFINED = "template_variable_undefined"
PROMPT_TOO_LARGE = "prompt_too_large"
SUITE_INPUT_INVALID = "suite_input_invalid"
SUITE_EXPECT_INVALID = "suite_expect_invalid"
SECRET_IN_BUNDLE = "secret_in_bundle"  # noqa: S105 (an error code, not a secret)


@dataclass(frozen=True)
class BundleError:
    """One precise problem in a bundle: a stable code, the file, a path inside it and a reason."""

    code: str
    file: str
    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the error as a JSON-compatible dict."""
        return asdict(self)


class BundleArchiveError(ValueError):
    """The bundle's files could not be read safely; `errors` lists every problem found."""

    def __init__(self, errors: list[BundleError]):
        self.errors = list(errors)
        super().__init__("; ".join(f"{error.file}: {error.message}" for error in self.errors))


class BundleCompileError(ValueError):
    """The bundle content cannot be compiled: missing manifest, bad reference, bad policy or template."""

    def __init__(self, message: str, file: str | None = None):
        super().__init__(f"{file}: {message}" if file else message)
        self.message = message
        self.file = file
