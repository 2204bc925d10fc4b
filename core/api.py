"""API plumbing shared by every app: the error shape of DESIGN §9, for DRF views and beyond.

Every answer under /api/ that is an error has the shape {"error": {"code", "message", "details"}}; a 400 lists
each problem in `details` as {field, code, message}. Bad input is refused before it reaches the database
(NUL characters in the path or the query, unparseable times, malformed pagination), so it never turns into a
500, and the OpenAPI schema documents the paginated envelopes and the error answers.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db.models import QuerySet
from django.http import Http404, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError, ValidationFailed
from core.pagination import CURSOR_PARAM, MAX_CURSOR_LENGTH, Keyset, cursor_page
from core.text import printable

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
SERVER_ERROR_MESSAGE = "The server failed to process the request; the failure was logged."
ROUTE_NOT_FOUND_MESSAGE = "No API route matches this path."
INVALID_REQUEST_MESSAGE = "The request is not valid."
NUL_NOT_ALLOWED = "must not contain NUL (\\u0000) characters"
PAYLOAD_TOO_LARGE_MESSAGE = "The request body is larger than {limit} bytes."
TOO_MANY_FIELDS_MESSAGE = "The request has more than {limit} form fields."
TOO_MANY_FILES_MESSAGE = "The request has more than {limit} files."
NESTED_TOO_DEEPLY_MESSAGE = "JSON parse error - the document is nested too deeply."
INVALID_LIMIT = "limit must be an integer from 1 to {maximum}; got {value!r}."
INVALID_OFFSET = "offset must be an integer from 0 to {maximum}; got {value!r}."
INVALID_TIME_VALUE = "{name} must be an ISO 8601 date or date-time, e.g. 2026-01-31T12:00:00Z; got {value!r}."
MAX_PAGE_SIZE = 1000
MAX_OFFSET = 10**12

DRF_CODES = {
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "throttled",
    drf_exceptions.ParseError: "parse_error",
    drf_exceptions.ValidationError: "validation_failed",
}
# The code of an error answer that some layer outside the API rendered (e.g. as HTML), by status.
STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    500: "server_error",
}
# Headers kept when an error answer is re-rendered as JSON.
KEPT_HEADERS = ("WWW-Authenticate", "Allow", "Retry-After")


class InvalidQuery(ValidationFailed):
    """A query parameter that cannot be understood; details name it."""

    code = "invalid_query"


class PayloadTooLarge(DomainError):
    """The request body exceeds DATA_UPLOAD_MAX_MEMORY_SIZE."""

    code = "payload_too_large"
    status = 413


class TooManyParts(ValidationFailed):
    """A form or multipart body has more fields or files than the server accepts."""

    code = "too_many_parts"


class UnparseableBody(DomainError):
    """The request body could not be parsed (nested too deeply for the JSON parser)."""

    code = "parse_error"
    status = 400


def username_of(user) -> str | None:
    """Return the username of a user, or None."""
    return user.get_username() if user is not None else None


def error_body(code: str, message: str, details: list | None = None) -> dict:
    """Return the API error shape."""
    return {"error": {"code": code, "message": message, "details": details or []}}


def field_error(field: str, code: str, message: str) -> dict:
    """Return one validation detail: which field, a stable code, and why."""
    return {"field": field, "code": code, "message": message}


def invalid_query(name: str, message: str, *, error_class: type[ValidationFailed] = InvalidQuery):
    """Return the error refusing query parameter `name`, with one detail naming it."""
    return error_class(message, details=[field_error(name, "invalid", message)])


def validation_details(detail, path: str = "") -> list[dict]:
    """Flatten DRF's nested validation detail into [{field, code, message}] (list items as `field[i]`)."""
    if isinstance(detail, dict):
        items = []
        for key, value in detail.items():
            named = f"{path}.{key}" if path else str(key)
            child = f"{path}[{key}]" if isinstance(key, int) else named
            items.extend(validation_details(value, child))
        return items
    if isinstance(detail, list):
        items = []
        for index, value in enumerate(detail):
            nested = isinstance(value, dict | list)
            items.extend(validation_details(value, f"{path}[{index}]" if nested else path))
        return items
    return [
        {
            "field": path or "non_field_errors",
            "code": getattr(detail, "code", "invalid"),
            "message": str(detail),
        }
    ]


def raised_by_parser(exc: BaseException) -> bool:
    """Return whether `exc` was raised while DRF parsed the request body."""
    traceback = exc.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_globals.get("__name__") == "rest_framework.parsers":
            return True
        traceback = traceback.tb_next
    return False


def request_error(exc: BaseException) -> DomainError | None:
    """Return the client error an exception of Django's request parsing stands for, or None."""
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(PAYLOAD_TOO_LARGE_MESSAGE.format(limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
    if isinstance(exc, TooManyFieldsSent):
        return TooManyParts(TOO_MANY_FIELDS_MESSAGE.format(limit=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS))
    if isinstance(exc, TooManyFilesSent):
        return TooManyParts(TOO_MANY_FILES_MESSAGE.format(limit=settings.DATA_UPLOAD_MAX_NUMBER_FILES))
    if isinstance(exc, RecursionError) and raised_by_parser(exc):
        return UnparseableBody(NESTED_TOO_DEEPLY_MESSAGE)
    return None


def exception_handler(exc, context):
    """Render every API exception as {"error": {code, message, details}}."""
    exc = request_error(exc) or exc
    if isinstance(exc, DomainError):
        return Response(printable(exc.as_dict()), status=exc.status, headers=getattr(exc, "headers", None))
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled API error", exc_info=exc)
        return Response(error_body("server_error", SERVER_ERROR_MESSAGE), status=500)
    code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, drf_exceptions.ValidationError):
        body = error_body(code, INVALID_REQUEST_MESSAGE, validation_details(exc.detail))
    else:
        body = error_body(code, str(getattr(exc, "detail", exc)))
    response.data = printable(body)
    return response


@csrf_exempt  # an unknown route answers 404 whatever the method; CSRF would answer an HTML 403 first
def api_route_not_found(request, *args, **kwargs):
    """Answer JSON 404 for any unknown path under /api/."""
    return JsonResponse(
        error_body("route_not_found", ROUTE_NOT_FOUND_MESSAGE), status=status.HTTP_404_NOT_FOUND
    )


def nul_parameters(query, view_kwargs: dict) -> list[dict]:
    """Return a detail for every path or query parameter holding a NUL character (PostgreSQL refuses them)."""
    problems = [
        field_error(name, "null_characters_not_allowed", NUL_NOT_ALLOWED)
        for name, value in view_kwargs.items()
        if isinstance(value, str) and "\x00" in value
    ]
    for name, values in query.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            problems.append(
                field_error(name.replace("\x00", "\\u0000"), "null_characters_not_allowed", NUL_NOT_ALLOWED)
            )
    return problems


def json_error_response(error: DomainError) -> JsonResponse:
    """Return a domain error as a JSON answer."""
    return JsonResponse(printable(error.as_dict()), status=error.status)


def is_json(response) -> bool:
    """Return whether a response declares a JSON body."""
    content_type = response.get("Content-Type", "")
    return content_type.startswith("application/") and "json" in content_type.split(";")[0]


def as_json_error(response) -> JsonResponse:
    """Return the JSON error answer standing for a non-JSON error `response` (same status, kept headers)."""
    code = STATUS_CODES.get(response.status_code, "error")
    try:
        message = HTTPStatus(response.status_code).phrase + "."
    except ValueError:
        message = "The request failed."
    replacement = JsonResponse(error_body(code, message), status=response.status_code)
    for header in KEPT_HEADERS:
        if header in response:
            replacement[header] = response[header]
    return replacement


class ApiErrorMiddleware:
    """Keep every answer under /api/ in the JSON error shape: never an HTML page or a traceback.

    Refuses NUL characters in path and query parameters (400, each parameter named) before any view runs,
    turns exceptions escaping a view into JSON errors, and re-renders any other non-JSON error answer (a CSRF
    failure page, a template 404) as JSON with the same status.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(API_PREFIX) and response.status_code >= 400 and not is_json(response):
            return as_json_error(response)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        """Refuse NUL characters in the path or the query of an API request."""
        if not request.path.startswith(API_PREFIX):
            return None
        problems = nul_parameters(request.GET, view_kwargs)
        if problems:
            return json_error_response(ValidationFailed(INVALID_REQUEST_MESSAGE, details=problems))
        return None

    def process_exception(self, request, exception):
        """Return a JSON error for API paths; leave console pages to Django."""
        if not request.path.startswith(API_PREFIX):
            return None
        exception = request_error(exception) or exception
        if isinstance(exception, DomainError):
            return json_error_response(exception)
        if isinstance(exception, Http404):
            return JsonResponse(error_body("not_found", "Not found."), status=404)
        if isinstance(exception, DjangoPermissionDenied):
            return JsonResponse(error_body("permission_denied", str(exception) or "Forbidden."), status=403)
        logger.exception("Unhandled API error", exc_info=exception)
        return JsonResponse(error_body("server_error", SERVER_ERROR_MESSAGE), status=500)


# Query parameters -------------------------------------------------------------------------------------------


def parse_query_time(name: str, value: str | None, *, date_means_end: bool = False) -> datetime | None:
    """Return the UTC time a query parameter names, None when empty; raise InvalidQuery naming it.

    Accepts ISO 8601 dates and date-times; a naive time is UTC; a bare date means its start (its end with
    `date_means_end`). Any offset Python parses is accepted and converted to UTC (PostgreSQL would refuse
    offsets beyond ±15:59). A '+' sent unencoded in a query string arrives as a space and is read back.
    """
    if value is None or not value.strip():
        return None
    text = value.strip().replace(" ", "+")
    try:
        day = parse_date(text)
        if day is not None:
            moment = datetime.combine(day, time.max if date_means_end else time.min)
        else:
            moment = parse_datetime(text)
        if moment is None:
            raise ValueError(text)
    except ValueError:
        raise invalid_query(name, INVALID_TIME_VALUE.format(name=name, value=value)) from None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # before year 1 or after 9999 in UTC: as early or as late as a time can be
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


def strict_integer(text: str) -> int | None:
    """Return the integer `text` spells in plain decimal digits (an optional sign), or None."""
    digits = text.strip()
    body = digits[1:] if digits[:1] in ("+", "-") else digits
    if not body.isascii() or not body.isdigit() or len(body) > 18:
        return None
    return int(digits)


class ApiPagination(LimitOffsetPagination):
    """Pages of {count, count_exact, next, previous, results}, by cursor where the list's order allows.

    A list ordered by a keyset (see core/pagination.py) links its pages by `?cursor=`; `offset` still works
    there for older clients, and is the only way through a list ordered otherwise. `count` is exact up to
    COUNT_EXACT_LIMIT rows, else the planner's estimate with `count_exact: false`. A malformed limit, offset
    or cursor is refused with 400.
    """

    max_limit = MAX_PAGE_SIZE

    def get_limit(self, request) -> int:
        """Return the page size asked for (default PAGE_SIZE); raise InvalidQuery for a bad one."""
        raw = request.query_params.get(self.limit_query_param)
        if raw is None or raw == "":
            return self.default_limit
        limit = strict_integer(raw)
        if limit is None or not 1 <= limit <= self.max_limit:
            raise invalid_query(
                self.limit_query_param, INVALID_LIMIT.format(maximum=self.max_limit, value=raw)
            )
        return limit

    def get_schema_operation_parameters(self, view) -> list[dict]:
        """Return the limit, offset and cursor parameters with the bounds the pages enforce."""
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit, "default": self.default_limit},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET, "default": 0},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        cursor = {
            "name": CURSOR_PARAM,
            "required": False,
            "in": "query",
            "description": "Opaque; from `next` or `previous` of a page of this list.",
            "schema": {"type": "string", "maxLength": MAX_CURSOR_LENGTH},
        }
        return [*parameters, cursor]

    def get_paginated_response_schema(self, schema: dict) -> dict:
        """Return the page envelope's schema, with `count_exact`."""
        envelope = super().get_paginated_response_schema(schema)
        envelope["properties"]["count_exact"] = {"type": "boolean", "example": True}
        return envelope

    def get_offset(self, request) -> int:
        """Return the offset asked for (default 0); raise InvalidQuery for a bad one."""
        raw = request.query_params.get(self.offset_query_param)
        if raw is None or raw == "":
            return 0
        offset = strict_integer(raw)
        if offset is None or not 0 <= offset <= MAX_OFFSET:
            message = INVALID_OFFSET.format(maximum=MAX_OFFSET, value=raw)
            raise invalid_query(self.offset_query_param, message)
        return offset

    def paginate_queryset(self, queryset, request, view=None):
        """Return one page of `queryset`: by cursor when its order is a keyset, else by offset."""
        self.request = request
        self.keyset = Keyset.of(queryset) if isinstance(queryset, QuerySet) else None
        self.count_exact = True
        if self.keyset is None:
            return super().paginate_queryset(queryset, request, view)
        cursor = request.query_params.get(CURSOR_PARAM) or None
        limit, offset = self.get_limit(request), self.get_offset(request)
        self.page = cursor_page(queryset, self.keyset, cursor, limit, offset)
        self.count, self.count_exact = self.page.count, self.page.count_exact
        return self.page.rows

    def get_paginated_response(self, data):
        """Return the page envelope."""
        return Response(
            {
                "count": self.count,
                "count_exact": self.count_exact,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def cursor_link(self, cursor: str | None) -> str:
        """Return this list's URL at `cursor` (None: its first page)."""
        url = remove_query_param(self.request.build_absolute_uri(), self.offset_query_param)
        if cursor is None:
            return remove_query_param(url, CURSOR_PARAM)
        return replace_query_param(url, CURSOR_PARAM, cursor)

    def get_next_link(self):
        if getattr(self, "keyset", None) is None:
            return super().get_next_link()
        return self.cursor_link(self.page.next_cursor) if self.page.next_cursor else None

    def get_previous_link(self):
        if getattr(self, "keyset", None) is None:
            return super().get_previous_link()
        return self.cursor_link(self.page.previous_cursor) if self.page.has_previous else None


def paginated(view, request, rows, serializer_class=None) -> Response:
    """Return one page of `rows` as {count, count_exact, next, previous, results}, serialized."""
    paginator = ApiPagination()
    page = paginator.paginate_queryset(rows, request, view=view)
    data = serializer_class(page, many=True).data if serializer_class is not None else page
    return paginator.get_paginated_response(data)


@contextmanager
def errors_on_field(**fields_by_code: str) -> Iterator[None]:
    """Name the field of a validation error a service raised without details (`code=field`)."""
    try:
        yield
    except ValidationFailed as error:
        field = fields_by_code.get(error.code)
        if field is not None and not error.details:
            error.details = [field_error(field, error.code, error.message)]
        raise


# OpenAPI ----------------------------------------------------------------------------------------------------


@extend_schema_field({"type": "string", "pattern": r"\S"})
class NonBlankCharField(serializers.CharField):
    """Text that must not be blank; a blank one reaches the service, whose own error code names the rule."""

    def run_validation(self, data=serializers.empty):
        """Return "" for a blank text (the service refuses it), else validate as a CharField."""
        if isinstance(data, str) and not data.strip():
            return ""
        return super().run_validation(data)


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable error code, e.g. validation_failed, not_found.")
    message = serializers.CharField()
    details = serializers.ListField(
        child=serializers.DictField(),
        help_text="Each problem; for invalid input {field, code, message}.",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


ERROR_DESCRIPTIONS = {
    400: "Invalid input: `details` names each field and why.",
    401: "Not authenticated.",
    403: "Not a member of this tenant, or the role lacks the capability.",
    404: "Not found (or not visible to the caller).",
    409: "Conflicts with the current state.",
    413: "The request body is too large.",
    415: "Unsupported media type.",
}
BODY_METHODS = ("POST", "PUT", "PATCH")
NO_NUL_PATTERN = "^[^\\u0000]*$"


class ApiSchema(AutoSchema):
    """OpenAPI generation: view-named components, paginated envelopes, and the error answers documented.

    Every operation documents 400 (any parameter may be refused), 401 and 403; those with path parameters
    404; those reading a body 413 and 415; a view adds more per method: `error_statuses = {"POST": (409,)}`.
    """

    def get_serializer_name(self, serializer, direction) -> str:
        """Return a component name unique across views for serializers nested in an APIView."""
        serializer_class = serializer if isinstance(serializer, type) else type(serializer)
        qualified = serializer_class.__qualname__.split(".")
        if len(qualified) > 1 and qualified[-2].endswith("Api"):
            return qualified[-2].removesuffix("Api") + qualified[-1]
        return super().get_serializer_name(serializer, direction)

    def error_statuses(self) -> list[int]:
        """Return the error statuses this operation can answer."""
        codes = {400, 401, 403}
        if "{" in self.path:
            codes.add(404)
        if self.method in BODY_METHODS and self.get_request_serializer() is not None:
            codes.update((413, 415))
        codes.update(getattr(self.view, "error_statuses", {}).get(self.method, ()))
        return sorted(codes)

    def _get_parameters(self):
        parameters = super()._get_parameters()
        for parameter in parameters:
            if parameter["in"] == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True  # every optional filter reads an empty value as absent
            schema = parameter.get("schema", {})
            if schema.get("type") == "string" and not ({"enum", "format", "pattern"} & set(schema)):
                schema["pattern"] = NO_NUL_PATTERN  # ApiErrorMiddleware refuses NUL in any parameter
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self.error_statuses():
            key = str(code)
            if key not in responses:
                error = OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS.get(code, ""))
                responses[key] = self._get_response_for_code(error, key, direction=direction)
        return responses
