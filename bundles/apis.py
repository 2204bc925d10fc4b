"""Bundles API (DESIGN §9): list and read bundles and versions, push versions, diff, push grants, schemas."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from bundles.diff import diff_versions
from bundles.exceptions import ARCHIVE_INVALID, ArchiveInvalid
from bundles.extensions import bundle_facts, version_facts
from bundles.language.archive import MAX_ARCHIVE_BYTES, BundleArchiveError, read_archive
from bundles.language.documents import DIRECTORY_KINDS, ROOT_FILE_KINDS
from bundles.language.schemas import all_schemas
from bundles.selectors import (
    access_bundle,
    access_version,
    bundle_list,
    file_sizes,
    grantee_named,
    push_grantees,
    version_file,
    versions_of,
)
from bundles.services import bundle_push_grant, bundle_version_push
from core.api import ApiPagination, field_error, paginated, username_of
from core.errors import ValidationFailed
from core.text import printable, unstorable
from governance.apis import ChangeSerializer, accepted
from governance.models import GovernanceChangeRequest
from tenancy.roles import Capability

ONE_INPUT = "Send either `files` (JSON) or `archive` (multipart .tar.gz), not both."
NO_INPUT = "Send the bundle as `files` (JSON: {path: text}) or as `archive` (multipart .tar.gz)."
UNSTORABLE_PATH = "The file path '{path}' contains {reason}; bundle files cannot hold it."
# A version name in a query: not blank, no NUL (the schema of `from` and `to`).
VERSION_PARAMETER = {"type": "string", "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"}
UNSTORABLE_TEXT = "The file '{path}' contains {reason}; bundle files cannot hold it."


def storage_problems(files: dict[str, str], field: str) -> list[dict]:
    """Return a detail for every path or text of `files` PostgreSQL cannot store (JSON or archive input)."""
    problems = []
    for path, text in files.items():
        shown = printable(path).replace("\x00", "\\u0000")
        checks = (("unstorable_path", UNSTORABLE_PATH, path), ("unstorable_text", UNSTORABLE_TEXT, text))
        for code, template, value in checks:
            reason = unstorable(value) if isinstance(value, str) else None
            if reason:
                message = template.format(path=shown, reason=reason)
                problems.append({**field_error(field, code, message), "file": shown})
    return problems


def archive_files(upload) -> dict[str, str]:
    """Return the bundle files of an uploaded .tar.gz, or raise ArchiveInvalid listing every problem."""
    try:
        return read_archive(upload.read(MAX_ARCHIVE_BYTES + 1))
    except BundleArchiveError as error:
        details = [bundle_error.to_dict() for bundle_error in error.errors]
        raise ArchiveInvalid(ARCHIVE_INVALID.format(count=len(details)), details=details) from None


class VersionSummarySerializer(serializers.Serializer):
    version = serializers.CharField()
    digest = serializers.CharField()
    description = serializers.CharField()
    parent = serializers.CharField(allow_null=True)
    author = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


def version_summary(version, parents: dict[int, str]) -> dict:
    """Return the summary of `version`; `parents` maps version ids of its bundle to version strings."""
    return {
        "version": version.version,
        "digest": version.digest,
        "description": version.description,
        "parent": parents.get(version.parent_id),
        "author": username_of(version.author),
        "created_at": version.created_at,
    }


class FileEntrySerializer(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField(help_text="UTF-8 bytes")


VERSION_CORE_KEYS = {
    "bundle",
    "version",
    "digest",
    "description",
    "manifest",
    "parent",
    "author",
    "created_at",
    "validation",
    "files",
    "created",
}


def version_detail(version) -> dict:
    """Return the core detail of a version (without extension facts)."""
    return {
        "bundle": version.bundle.name,
        "version": version.version,
        "digest": version.digest,
        "description": version.description,
        "manifest": version.manifest,
        "parent": version.parent.version if version.parent_id else None,
        "author": username_of(version.author),
        "created_at": version.created_at,
        "validation": "valid",
        "files": file_sizes(version),
    }


class VersionDetailSerializer(serializers.Serializer):
    bundle = serializers.CharField()
    version = serializers.CharField()
    digest = serializers.CharField()
    description = serializers.CharField()
    manifest = serializers.JSONField()
    parent = serializers.CharField(allow_null=True)
    author = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    validation = serializers.ChoiceField(
        choices=["valid"], help_text="Stored versions passed validation when pushed."
    )
    files = FileEntrySerializer(many=True)


class BundleSchemaApi(APIView):
    """The JSON Schemas (draft 2020-12) of every bundle file kind, for editors and CI."""

    required_capabilities = {"GET": Capability.VIEW}

    class OutputSerializer(serializers.Serializer):
        schemas = serializers.DictField(child=serializers.JSONField(), help_text="kind -> JSON Schema")
        files = serializers.DictField(child=serializers.CharField(), help_text="file glob -> kind")

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        files = dict(ROOT_FILE_KINDS)
        for directory, kind in DIRECTORY_KINDS.items():
            files[f"{directory}/*.yaml"] = kind
            files[f"{directory}/*.yml"] = kind
        return Response({"schemas": all_schemas(), "files": files})


class BundleListApi(APIView):
    """The tenant's bundles with their latest version and version count, by name."""

    required_capabilities = {"GET": Capability.VIEW}
    pagination_class = ApiPagination

    class OutputSerializer(serializers.Serializer):
        name = serializers.CharField()
        description = serializers.CharField()
        latest_version = serializers.CharField(allow_null=True)
        latest_digest = serializers.CharField(allow_null=True)
        latest_at = serializers.DateTimeField(allow_null=True)
        version_count = serializers.IntegerField()
        created_at = serializers.DateTimeField()

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        return paginated(self, request, bundle_list(), self.OutputSerializer)


class BundleDetailApi(APIView):
    """One bundle and its versions, highest first, plus the facts other apps add (e.g. deployments)."""

    required_capabilities = {"GET": Capability.VIEW}

    class OutputSerializer(serializers.Serializer):
        name = serializers.CharField()
        description = serializers.CharField()
        created_by = serializers.CharField(allow_null=True)
        created_at = serializers.DateTimeField()
        latest_version = serializers.CharField(allow_null=True)
        version_count = serializers.IntegerField()
        versions = VersionSummarySerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request, name: str):
        bundle = access_bundle(request.user, name)
        versions = versions_of(bundle)
        parents = {version.pk: version.version for version in versions}
        body = {
            "name": bundle.name,
            "description": bundle.description,
            "created_by": username_of(bundle.created_by),
            "created_at": bundle.created_at,
            "latest_version": versions[0].version if versions else None,
            "version_count": len(versions),
            "versions": [version_summary(version, parents) for version in versions],
        }
        data = self.OutputSerializer(body).data
        return Response({**data, **bundle_facts(bundle, reserved=set(data))})


class BundleVersionPushApi(APIView):
    """Push a version: JSON {"files": {path: text}} or a multipart `archive` (.tar.gz).

    Creates the bundle on first push (capability create_bundle). Pushing to an existing bundle needs the
    capability push_version and the push_version grant on the bundle. 201 for a new version, 200 when the
    same content was pushed before (idempotent), 400 with every validation error, 409 for a conflicting or
    non-increasing version.
    """

    required_capabilities = {"POST": Capability.VIEW}  # create/push rights are checked per bundle
    parser_classes = [JSONParser, MultiPartParser]
    error_statuses = {"POST": (409,)}

    class InputSerializer(serializers.Serializer):
        files = serializers.DictField(
            child=serializers.CharField(allow_blank=True, trim_whitespace=False),
            required=False,
            help_text="path -> file text",
        )
        archive = serializers.FileField(required=False, allow_empty_file=True, help_text=".tar.gz")

        def validate(self, attrs):
            if "files" in attrs and "archive" in attrs:
                raise serializers.ValidationError(ONE_INPUT, code="ambiguous_input")
            if "files" not in attrs and "archive" not in attrs:
                raise serializers.ValidationError(NO_INPUT, code="missing_input")
            return attrs

    class OutputSerializer(VersionDetailSerializer):
        created = serializers.BooleanField(help_text="False when this content was pushed before")

    @extend_schema(
        request={
            "application/json": inline_serializer(
                "BundleVersionPushJson",
                {"files": serializers.DictField(child=serializers.CharField())},
            ),
            "multipart/form-data": inline_serializer(
                "BundleVersionPushArchive", {"archive": serializers.FileField()}
            ),
        },
        responses={201: OutputSerializer, 200: OutputSerializer},
    )
    def post(self, request, name: str):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "files" in data:
            files, field, error_class = data["files"], "files", ValidationFailed
        else:
            files, field, error_class = archive_files(data["archive"]), "archive", ArchiveInvalid
        problems = storage_problems(files, field)
        if problems:
            message = ARCHIVE_INVALID.format(count=len(problems)) if field == "archive" else None
            raise error_class(message, details=problems)
        membership = request.membership
        result = bundle_version_push(
            actor=request.user,
            name=name,
            files=files,
            can_create=membership.can(Capability.CREATE_BUNDLE),
            can_push=membership.can(Capability.PUSH_VERSION),
        )
        body = {**version_detail(result.version), "created": result.created}
        return Response(
            self.OutputSerializer(body).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class VersionDetailApi(APIView):
    """One version: manifest, digest, parent, author, files with sizes, plus facts other apps add (gates)."""

    required_capabilities = {"GET": Capability.VIEW}

    class OutputSerializer(VersionDetailSerializer):
        pass

    @extend_schema(responses=OutputSerializer)
    def get(self, request, name: str, version: str):
        found = access_version(request.user, name, version)
        data = self.OutputSerializer(version_detail(found)).data
        return Response({**data, **version_facts(found, reserved=VERSION_CORE_KEYS)})


class VersionFileApi(APIView):
    """The source text of one file of a version."""

    required_capabilities = {"GET": Capability.VIEW}

    class OutputSerializer(serializers.Serializer):
        path = serializers.CharField()
        text = serializers.CharField()

    @extend_schema(responses=OutputSerializer)
    def get(self, request, name: str, version: str, path: str):
        found = access_version(request.user, name, version)
        return Response({"path": path, "text": version_file(found, path)})


class BundleDiffApi(APIView):
    """Per-file unified diffs and a semantic summary between two versions of a bundle."""

    required_capabilities = {"GET": Capability.VIEW}

    class InputSerializer(serializers.Serializer):
        def get_fields(self):
            return {
                "from": serializers.CharField(help_text="the old version"),
                "to": serializers.CharField(help_text="the new version"),
            }

    class OutputSerializer(serializers.Serializer):
        bundle = serializers.CharField()
        to = serializers.CharField()
        identical = serializers.BooleanField()
        files = inline_serializer(
            "BundleDiffFile",
            {
                "path": serializers.CharField(),
                "status": serializers.CharField(help_text="added, removed or changed"),
                "diff": serializers.CharField(),
            },
            many=True,
        )
        summary = serializers.JSONField()

        def get_fields(self):
            fields = super().get_fields()
            return {"from": serializers.CharField(), **fields}

    @extend_schema(
        parameters=[
            OpenApiParameter("from", VERSION_PARAMETER, required=True, description="the old version"),
            OpenApiParameter("to", VERSION_PARAMETER, required=True, description="the new version"),
        ],
        responses=OutputSerializer,
    )
    def get(self, request, name: str):
        query = self.InputSerializer(data=request.query_params)
        access_bundle(request.user, name)  # an unknown bundle is 404 before a malformed query is 400
        query.is_valid(raise_exception=True)
        old = access_version(request.user, name, query.validated_data["from"])
        new = access_version(request.user, name, query.validated_data["to"])
        diff = diff_versions(old.files, old.content, new.files, new.content)
        body = {"bundle": name, "from": old.version, "to": new.version, **diff}
        return Response(self.OutputSerializer(body).data)


class PushGrantListApi(APIView):
    """Members holding the push_version grant on a bundle."""

    required_capabilities = {"GET": Capability.VIEW}

    class OutputSerializer(serializers.Serializer):
        user = serializers.CharField()

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request, name: str):
        bundle = access_bundle(request.user, name)
        return Response([{"user": user.get_username()} for user in push_grantees(bundle)])


class PushGrantApi(APIView):
    """Grant (PUT) or revoke (DELETE) a member's push_version on a bundle (admins); repeats change nothing.

    A revocation applies at once; a new grant answers 202 with the pending governance change, which an admin
    other than the requester and the grantee must approve (200 while the tenant has a single admin).
    """

    required_capabilities = {"PUT": Capability.MANAGE_MEMBERSHIPS, "DELETE": Capability.MANAGE_MEMBERSHIPS}

    class OutputSerializer(serializers.Serializer):
        bundle = serializers.CharField()
        user = serializers.CharField()
        granted = serializers.BooleanField()
        changed = serializers.BooleanField(help_text="False when the grant already was in this state")

    def change(self, request, name: str, username: str, *, granted: bool) -> Response:
        bundle = access_bundle(request.user, name)
        user = grantee_named(username)
        changed = bundle_push_grant(actor=request.user, bundle=bundle, user=user, granted=granted)
        if isinstance(changed, GovernanceChangeRequest):
            return accepted(changed)
        body = {"bundle": bundle.name, "user": user.get_username(), "granted": granted, "changed": changed}
        return Response(self.OutputSerializer(body).data)

    @extend_schema(request=None, responses={200: OutputSerializer, 202: ChangeSerializer})
    def put(self, request, name: str, username: str):
        return self.change(request, name, username, granted=True)

    @extend_schema(request=None, responses={200: OutputSerializer})
    def delete(self, request, name: str, username: str):
        return self.change(request, name, username, granted=False)
