"""Plain answers with their own status and headers: console pages, redirects, 304s.

A handler returns one of three things (:data:`convostore.api.routing.Handler`):

* ``bytes``: a JSON body, sent with status 200 and ``content-type: application/json``
  (almost every route);
* a :class:`Response`: a whole body with the status and headers the handler chose;
* a :class:`~convostore.api.streaming.StreamingBody`: a body sent in pieces as it is
  produced (Server-Sent Events of ``POST /v1/responses``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Response:
    """Sent in one piece with ``headers`` as they are (the app adds only the request id):
    the handler names the content-type and content-length (a ``HEAD`` answer's length is
    that of the body it leaves out)."""

    body: bytes
    headers: list[tuple[bytes, bytes]]
    status: int = 200
