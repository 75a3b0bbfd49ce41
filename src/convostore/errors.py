"""The one error hierarchy of convostore.

Every failure a client can see is an :class:`ApiError`. It carries the four
fields of the OpenAI error envelope as attributes plus the HTTP status; the
HTTP layer turns it into ``{"error": {...}}`` with one function,
:func:`convostore.api.render.error`. Nothing here knows about HTTP.

The message helpers below follow the templates OpenAI uses (CONTRACT.md §6).
"""

from __future__ import annotations

from collections.abc import Sequence

INVALID_REQUEST = "invalid_request_error"


#: How much of a client's value an error quotes (issue 15, I5): a value, a key, an id.
QUOTE_LIMIT = 128
#: Bounds of a whole error's message and param, whatever they quote.
MESSAGE_LIMIT = 2048
PARAM_LIMIT = 512


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text``, or its first ``limit`` characters and how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


class ApiError(Exception):
    """An error answered to the client with the OpenAI envelope."""

    status: int = 400
    type: str = INVALID_REQUEST
    #: Extra response headers (``Allow``, ``Retry-After``), as ASGI byte pairs.
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        message = clip(message, MESSAGE_LIMIT)
        super().__init__(message)
        self.message = message
        self.param = None if param is None else clip(param, PARAM_LIMIT)
        self.code = code

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, message={self.message!r}, "
            f"param={self.param!r}, code={self.code!r})"
        )


class InvalidRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class NotFound(ApiError):
    status = 404


class Forbidden(ApiError):
    status = 403


class CrossSiteRequest(Forbidden):
    """A browser sent a state-changing request for a page of another site (api/csrf.py)."""


class HostNotAllowed(Forbidden):
    """An open server was asked for a host name that is not loopback (api/rebinding.py)."""


class MethodNotAllowed(ApiError):
    status = 405

    def __init__(self, message: str, *, allow: Sequence[str] = ()):
        super().__init__(message)
        self.allow = tuple(allow)
        self.headers = ((b"allow", ", ".join(self.allow).encode()),)


class RequestTimeout(ApiError):
    """The request body did not arrive in time (the connection is closed after the answer)."""

    status = 408
    headers = ((b"connection", b"close"),)


class PayloadTooLarge(ApiError):
    status = 413
    # The rest of the body is not read: close the connection rather than drain it.
    headers = ((b"connection", b"close"),)


class UnsupportedMediaType(ApiError):
    status = 415


class HeadersTooLarge(ApiError):
    status = 431


class RateLimited(ApiError):
    status = 429
    type = "requests"

    def __init__(self, message: str, *, retry_after: int, code: str | None = "rate_limit_exceeded"):
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.headers = ((b"retry-after", str(retry_after).encode()),)


class ServiceUnavailable(ApiError):
    status = 503
    type = "server_error"
    headers = ((b"retry-after", b"1"),)


class InternalError(ApiError):
    status = 500
    type = "server_error"


# --- message templates (CONTRACT.md §6) -------------------------------------------------

_JSON_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def json_type_of(value: object) -> str:
    """The JSON type name of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def described_type(json_type: str) -> str:
    return _JSON_TYPE_NAMES.get(json_type, json_type)


def quote_list(values: Sequence[object]) -> str:
    """``'a'``, ``'a' and 'b'``, ``'a', 'b', and 'c'``."""
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 1:
        return "".join(quoted)
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def missing_parameter(path: str) -> InvalidRequest:
    return InvalidRequest(
        f"Missing required parameter: '{path}'.", param=path, code="missing_required_parameter"
    )


def unknown_parameter(path: str) -> InvalidRequest:
    return InvalidRequest(
        f"Unknown parameter: '{clip(path, PARAM_LIMIT)}'.", param=path, code="unknown_parameter"
    )


def invalid_type(path: str, expected: Sequence[str], value: object) -> InvalidRequest:
    names = [described_type(t) for t in expected]
    wanted = names[0] if len(names) == 1 else "one of " + " or ".join(names)
    got = described_type(json_type_of(value))
    return InvalidRequest(
        f"Invalid type for '{path}': expected {wanted}, but got {got} instead.",
        param=path,
        code="invalid_type",
    )


def invalid_value(path: str, value: object, supported: Sequence[object]) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid value: '{clip(str(value))}'. Supported values are: {quote_list(supported)}.",
        param=path,
        code="invalid_value",
    )


def _invalid(path: str, problem: str, code: str) -> InvalidRequest:
    """OpenAI's ``Invalid '<path>': <problem>`` about the value at ``path``."""
    return InvalidRequest(f"Invalid '{path}': {problem}", param=path, code=code)


def integer_out_of_range(
    path: str, value: float, *, minimum: float | None, maximum: float | None
) -> InvalidRequest:
    return out_of_range(path, value, minimum=minimum, maximum=maximum, kind="integer")


def out_of_range(
    path: str, value: float, *, minimum: float | None, maximum: float | None, kind: str
) -> InvalidRequest:
    """A number outside its bounds; ``kind`` is ``integer`` or ``decimal`` (a JSON number)."""
    if maximum is not None and value > maximum:
        return _invalid(
            path,
            f"{kind} above maximum value. Expected a value <= {maximum}, but got {value} instead.",
            f"{kind}_above_max_value",
        )
    return _invalid(
        path,
        f"{kind} below minimum value. Expected a value >= {minimum}, but got {value} instead.",
        f"{kind}_below_min_value",
    )


def string_length(
    path: str, length: int, *, minimum: int | None, maximum: int | None
) -> InvalidRequest:
    return _length(path, "a string", length, minimum, maximum)


def array_length(
    path: str, length: int, *, minimum: int | None, maximum: int | None
) -> InvalidRequest:
    return _length(path, "an array", length, minimum, maximum)


def _length(
    path: str, kind: str, length: int, minimum: int | None, maximum: int | None
) -> InvalidRequest:
    """A string's or an array's length out of bounds, in OpenAI's words (``kind`` is
    ``a string`` or ``an array``)."""
    noun = kind.split()[1]
    above = maximum is not None and length > maximum
    too, bound, limit, code = (
        ("long", "maximum", maximum, "above_max")
        if above
        else ("short", "minimum", minimum, "below_min")
    )
    return _invalid(
        path,
        f"{noun} too {too}. Expected {kind} with {bound} length {limit}, "
        f"but got {kind} with length {length} instead.",
        f"{noun}_{code}_length",
    )


def pattern_mismatch(path: str, value: str, pattern: str) -> InvalidRequest:
    return _invalid(
        path,
        f"string does not match pattern. Expected a string that matches the pattern '{pattern}'.",
        "invalid_value",
    )


def too_many_properties(path: str, count: int, maximum: int) -> InvalidRequest:
    return _invalid(
        path,
        f"too many properties. Expected an object with at most {maximum} properties, "
        f"but got an object with {count} properties instead.",
        "object_above_max_properties",
    )


def property_name_too_long(path: str, key: str, maximum: int) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid property name in '{path}': '{clip(key)}' is too long. Expected a string with "
        f"maximum length {maximum}, but got a string with length {len(key)} instead.",
        param=f"{path}.{key}",
        code="property_name_above_max_length",
    )


def _missing(
    subject: str, key: str, where: str = "", *, param: str | None = None, code: str | None = None
) -> NotFound:
    """OpenAI's ``<Subject> with id '<key>' not found<where>.`` about a named object."""
    return NotFound(f"{subject} with id '{key}' not found{where}.", param=param, code=code)


def _no_such(subject: str, key: str, cursor: str) -> NotFound:
    """OpenAI's ``No <subject> found with id '<key>'`` about the cursor parameter
    ``cursor``: no final period, as OpenAI words it (CONTRACT.md D8)."""
    return NotFound(f"No {subject} found with id '{key}'", param=cursor)


def conversation_not_found(conversation_id: str) -> NotFound:
    return _missing("Conversation", clip(conversation_id))


def response_not_found(response_id: str) -> NotFound:
    return _missing("Response", response_id)


def previous_response_not_found(response_id: str) -> NotFound:
    return _missing(
        "Previous response",
        response_id,
        param="previous_response_id",
        code="previous_response_not_found",
    )


def previous_response_running(response_id: str) -> InvalidRequest:
    # Wording not seen in OpenAI traffic: convostore's own.
    return InvalidRequest(
        f"Previous response with id '{response_id}' is still in progress; wait until it "
        "completes (poll GET /v1/responses/{id}).",
        param="previous_response_id",
    )


def item_not_in_conversation(item_id: str) -> NotFound:
    return _missing("Item", clip(item_id), " in conversation")


def referenced_item_not_found(item_id: str) -> NotFound:
    return _missing("Item", clip(item_id))


def after_not_found(item_id: str) -> NotFound:
    return _no_such("item", clip(item_id), "after")


def until_not_found(item_id: str) -> NotFound:
    """A fork's ``until`` naming no item of the conversation: worded like D8's ``after``."""
    return _no_such("item", item_id, "until")


def item_already_in_conversation() -> InvalidRequest:
    return InvalidRequest(
        "Item already in conversation", param="items", code="item_already_in_conversation"
    )


# --- the extensions (issue 7) ------------------------------------------------------------


def conversation_after_not_found(conversation_id: str) -> NotFound:
    return _no_such("conversation", clip(conversation_id), "after")


def conversation_before_not_found(conversation_id: str) -> NotFound:
    return _no_such("conversation", conversation_id, "before")


def search_after_not_found(cursor: str) -> NotFound:
    return _no_such("search result", clip(cursor), "after")


# --- the web console (issue 8) ---------------------------------------------------------------


def cross_site_request(evidence: str) -> CrossSiteRequest:
    return CrossSiteRequest(
        "Cross-site request refused: this server does not accept requests that change data "
        f"from pages of another site ({evidence}).",
        code="cross_site_request",
    )


def host_not_allowed(host: str) -> HostNotAllowed:
    return HostNotAllowed(
        f"Host '{host}' is not allowed: this server runs without API keys and answers only "
        "requests addressed to localhost, 127.0.0.1 or [::1]. Create an API key to serve "
        "other host names.",
        code="host_not_allowed",
    )


# --- the Responses API (issue 10) -----------------------------------------------------------


class BadGateway(ApiError):
    """The model server behind ``/v1/responses`` failed or could not be reached."""

    status = 502
    type = "server_error"


class GatewayTimeout(ApiError):
    """The model server behind ``/v1/responses`` did not answer in time."""

    status = 504
    type = "server_error"


def conversation_locked() -> InvalidRequest:
    """A response is already in flight on the conversation (OpenAI's wording)."""
    return InvalidRequest(
        "Another process is currently operating on this conversation. "
        "Please retry in a few seconds.",
        code="conversation_locked",
    )


def unsupported_parameter(path: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"Unsupported parameter: '{path}' {why}", param=path, code="unsupported_parameter"
    )


class UnprocessableEntity(ApiError):
    status = 422


def idempotency_key_reused(key: str) -> UnprocessableEntity:
    """The key was used before with another request (the IETF Idempotency-Key draft's 422)."""
    return UnprocessableEntity(
        f"Idempotency-Key '{key}' was already used with a different request (another body, "
        "path or query). Use a new key for a new request.",
        param="Idempotency-Key",
        code="idempotency_key_reused",
    )


def invalid_idempotency_key() -> InvalidRequest:
    return InvalidRequest(
        "Invalid 'Idempotency-Key' header: expected 1 to 255 printable ASCII characters.",
        param="Idempotency-Key",
        code="invalid_idempotency_key",
    )
