"""uvicorn, configured against slow and idle clients.

uvicorn's own `timeout_keep_alive` only covers the time between two requests, and every byte
a client sends resets it, so a client sending a header line now and then (or a body at one
byte a second) holds its connection, and a file descriptor, forever; some 20,000 of them made
the server refuse connections (`accept() EMFILE`). `GuardedH11Protocol` adds:

- a deadline for the request line and headers (`QA_HEADER_TIMEOUT_S`), counted from the
  connection (or the end of the previous response), not reset by data;
- a deadline for the body (`QA_BODY_TIMEOUT_S`), counted from the end of the headers;
- a cap on open connections (`QA_MAX_CONNECTIONS`): one more is closed as soon as it is
  accepted, so the descriptors in use stay bounded; uvicorn's `limit_concurrency` also
  answers 503 to requests beyond it.

A connection past a deadline gets a 408 when no response has started and is closed.
"""

import asyncio
import contextlib
import logging
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from qa.config import Settings

log = logging.getLogger("uvicorn.error")

TIMEOUT_BODY = (
    b'{"detail": "The request was not received in time; send it again over a faster connection."}'
)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body deadlines and a connection cap."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_connections: int = 1000

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        # The limits travel on uvicorn's config, which worker processes receive pickled.
        limits = getattr(config, "qa_limits", None)
        if limits is not None:
            self.header_timeout_s, self.body_timeout_s, self.max_connections = limits
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for = ""  # "headers", "body", "response" or "idle"

    # -- deadlines ----------------------------------------------------------------------------
    def _arm(self, seconds: float, waiting_for: str) -> None:
        self._disarm()
        self._waiting_for = waiting_for
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        log.warning(
            "closing a connection from %s: the request %s took too long",
            f"{self.client[0]}:{self.client[1]}" if self.client else "a client",
            self._waiting_for,
        )
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            with contextlib.suppress(RuntimeError):
                self.transport.write(
                    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                    b"connection: close\r\ncontent-length: "
                    + str(len(TIMEOUT_BODY)).encode()
                    + b"\r\n\r\n"
                    + TIMEOUT_BODY
                )
        if self.cycle is not None:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()

    # -- uvicorn's protocol interface -----------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("closing a new connection: %d are open already", self.max_connections)
            transport.abort()
            return
        self._arm(self.header_timeout_s, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is None or self.transport.is_closing():
            return
        if self.conn.their_state is h11.SEND_BODY:
            if self._waiting_for != "body":
                self._arm(self.body_timeout_s, "body")
        elif self._waiting_for in ("headers", "body") and self.conn.their_state in (
            h11.DONE,
            h11.MUST_CLOSE,
            h11.CLOSED,
        ):
            self._disarm()
            self._waiting_for = "response"

    def data_received(self, data: bytes) -> None:
        if self._waiting_for == "idle":  # the next request's first bytes: its headers' deadline
            self._arm(self.header_timeout_s, "headers")
        super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return  # closing, or a pipelined request already taken up by handle_events
        if self.conn.trailing_data[0]:  # part of the next request is in: its headers' deadline
            self._arm(self.header_timeout_s, "headers")
        else:
            # Idle between requests: only the keep-alive timeout (QA_KEEP_ALIVE_S) closes it.
            # A header deadline from here would close idle keep-alive connections after
            # header_timeout_s, racing the client's next request on them.
            self._disarm()
            self._waiting_for = "idle"


WORKER_APP = "qa.api.app:worker_app"  # what each worker process imports and calls


def server_config(
    app: FastAPI | str, settings: Settings, *, host: str, port: int, workers: int = 1
) -> uvicorn.Config:
    """uvicorn's configuration for `atmp-qa serve`: the guarded protocol and its limits.

    With `workers` > 1, `app` is an import string (`WORKER_APP`): uvicorn starts that many
    processes sharing one listening socket, each building its own app and loading the index.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        factory=isinstance(app, str),
        workers=workers,
        http=GuardedH11Protocol,
        timeout_keep_alive=settings.keep_alive_s,
        limit_concurrency=settings.max_connections,
        h11_max_incomplete_event_size=16 * 1024,  # the request line and headers
    )
    config.qa_limits = (  # type: ignore[attr-defined]
        settings.header_timeout_s,
        settings.body_timeout_s,
        settings.max_connections,
    )
    return config
