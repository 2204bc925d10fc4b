"""API plumbing shared by every app: the error shape of DESIGN §9, for DRF views and beyond."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from contractor_site.errors import DomainError

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
SERVER_ERROR_MESSAGE = "The server failed to process the request; the failure was logged."
ROUTE_NOT_FOUND_MESSAGE = "No API route matches this path."

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


def error_body(code: str, message: str, details: list | None = None) -> dict:
    """Return the API error shape."""
    return {"error": {"code": code, "message": message, "details": details or []}}


def validation_details(detail, path: str = "") -> list[dict]:
    """Flatten DRF's nested validation detail into [{field, code, message}]."""
    if isinstance(detail, dict):
        items = []
        for key, value in detail.items():
            items.extend(validation_details(value, f"{path}.{key}" if path else str(key)))
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


def exception_handler(exc, context):
    """Render every API exception as {"error": {code, message, details}}."""
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status)
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
        response.data = error_body(code, "The request is not valid.", validation_details(exc.detail))
    else:
        response.data = error_body(code, str(getattr(exc, "detail", exc)))
    return response


def api_route_not_found(request, *args, **kwargs):
    """Answer JSON 404 for any unknown path under /api/."""
    return JsonResponse(
        error_body("route_not_found", ROUTE_NOT_FOUND_MESSAGE), status=status.HTTP_404_NOT_FOUND
    )


class ApiErrorMiddleware:
    """Turn an exception escaping a view under /api/ into the JSON error shape, never an HTML page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        """Return a JSON error for API paths; leave console pages to Django."""
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, DomainError):
            return JsonResponse(exception.as_dict(), status=exception.status)
        if isinstance(exception, Http404):
            return JsonResponse(error_body("not_found", "Not found."), status=404)
        if isinstance(exception, DjangoPermissionDenied):
            return JsonResponse(error_body("permission_denied", str(exception) or "Forbidden."), status=403)
        logger.exception("Unhandled API error", exc_info=exception)
        return JsonResponse(error_body("server_error", SERVER_ERROR_MESSAGE), status=500)


class ApiSchema(AutoSchema):
    """OpenAPI generation naming nested view serializers after their view (MeApi.Output -> MeOutput)."""

    def get_serializer_name(self, serializer, direction) -> str:
        """Return a component name unique across views for serializers nested in an APIView."""
        serializer_class = serializer if isinstance(serializer, type) else type(serializer)
        qualified = serializer_class.__qualname__.split(".")
        if len(qualified) > 1 and qualified[-2].endswith("Api"):
            return qualified[-2].removesuffix("Api") + qualified[-1]
        return super().get_serializer_name(serializer, direction)
