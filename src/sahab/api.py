"""The JSON API at /api/: one NinjaAPI, each pillar adds its router."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from sahab.core.errors import DomainError
from sahab.core.problems import domain_problem, problem_response
from sahab.directory import services as directory_services


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>`` for machine clients."""

    def authenticate(self, request, token):
        user = directory_services.authenticate_token(token)
        if user is not None:
            request.user = user
        return user


class SessionAuth(APIKeyCookie):
    """The signed-in web user; writes must carry the CSRF token.

    Authentication is checked before CSRF, so that an anonymous write gets 401, not 403.
    """

    param_name = settings.SESSION_COOKIE_NAME
    openapi_description = "The session cookie of a signed-in web user (CSRF token on writes)."

    def __init__(self) -> None:
        super().__init__(csrf=False)

    def authenticate(self, request, key):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if request.method not in ("GET", "HEAD", "OPTIONS") and check_csrf(request):
            raise HttpError(403, "CSRF check failed: send the X-CSRFToken header.")
        return user


_PROBLEM_SCHEMA = {
    "title": "Problem",
    "type": "object",
    "description": ("RFC 9457 problem details. A refusal of the platform's rules has the "
                    "`type` `<public URL>/problems/<code>` and its `code` (docs/errors.md); "
                    "other problems have the `type` `about:blank`."),
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "The stable code of a domain refusal."},
        "detail": {"type": "string",
                   "description": "What went wrong, in the request's language."},
        "errors": {"anyOf": [{"type": "object"}, {"type": "array"}]},
    },
}
_PROBLEM_STATUSES = {
    "400": "Malformed request",
    "401": "Missing or invalid credentials",
    "403": "Not allowed for this user",
    "404": "No such object",
    "409": "Conflicts with the current state",
    "422": "Invalid input",
    "429": "Too many requests",
}


class SahabAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document declares the problem responses every operation has."""

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = _PROBLEM_SCHEMA
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in schema["paths"].values():
            for operation in operations.values():
                for status, description in _PROBLEM_STATUSES.items():
                    operation["responses"].setdefault(
                        status, {"description": description, "content": problem})
        return schema


api = SahabAPI(
    title="sahab API",
    version="1",
    description=(
        "The JSON API of sahab, the government cloud platform of Tunisia's administrations. "
        "Machine clients send `Authorization: Bearer <token>`; errors are RFC 9457 problem "
        "details (`application/problem+json`) whose `code` and `type` "
        "(`<public URL>/problems/<code>`) name the reason, with `detail` in the language "
        "of `Accept-Language` (fr, ar, en)."),
    auth=[BearerToken(), SessionAuth()],
    urls_namespace="api",
)


class Problem(Schema):
    type: str
    title: str
    status: int
    code: str | None = None
    detail: str | None = None
    errors: dict | list | None = None


@api.exception_handler(DomainError)
def _domain_error(request, exc: DomainError):
    return domain_problem(exc)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return problem_response(401, "Unauthorized",
                            _("Send a valid API token as 'Authorization: Bearer <token>'."),
                            headers={"WWW-Authenticate": 'Bearer realm="sahab"'})


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    errors = [{"loc": [str(p) for p in e.get("loc", [])], "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors]
    return problem_response(422, "Invalid input", _("The request does not match the schema."),
                            errors=errors)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return problem_response(404, "Not found", str(exc) or "No such object.")


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return problem_response(exc.status_code, str(exc.message), str(exc.message))


def _register_routers() -> None:
    from sahab.cloud.api import router as cloud_router
    from sahab.directory.api import router as directory_router
    from sahab.exchange.api import router as exchange_router
    from sahab.mail.api import router as mail_router
    from sahab.procurement.api import router as procurement_router

    api.add_router("/", directory_router)
    api.add_router("/", procurement_router)
    api.add_router("/", cloud_router)
    api.add_router("/", exchange_router)
    api.add_router("/", mail_router)


_register_routers()
