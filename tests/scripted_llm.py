"""A tiny OpenAI-compatible chat server on loopback that sends scripted replies.

It speaks `POST /v1/chat/completions` (a JSON completion, or server-sent events when the
request asks for `stream`), records every request body, and can be told to be slow, to fail
with an HTTP status, to send a body that is not JSON, or to break a stream off.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class QuietServer(ThreadingHTTPServer):
    """Serves each request on a daemon thread; a client that hung up is not an error."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@dataclass
class Script:
    """What the server answers to every request."""

    content: str = ""
    pieces: list[str] | None = None  # how a stream splits `content` (default: word by word)
    status: int = 200
    body: str | None = None  # sent as is instead of a completion
    delay_s: float = 0.0  # before the first byte
    piece_delay_s: float = 0.0  # between streamed pieces
    stream_tail: list[str] = field(default_factory=list)  # raw `data:` values after the pieces


class ScriptedLLM:
    """The server, started on a free port by `with ScriptedLLM() as llm:`."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.requests: list[dict[str, Any]] = []
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ending in /v1."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> "ScriptedLLM":
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        llm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = json.loads(raw)
                request["authorization"] = self.headers.get("Authorization")
                request["path"] = self.path
                llm.requests.append(request)
                script = llm.script
                time.sleep(script.delay_s)
                if script.body is not None or script.status != 200:
                    self._send(script.status, script.body or '{"error": {"message": "boom"}}')
                elif request.get("stream"):
                    self._stream(script)
                else:
                    self._send(200, json.dumps(completion(script.content)))

            def _send(self, status: int, body: str, kind: str = "application/json") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, script: Script) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                pieces = script.pieces
                if pieces is None:
                    pieces = [w for w in script.content.replace(" ", " \0").split("\0") if w]
                events = [json.dumps(chunk({"role": "assistant"}))]
                events += [json.dumps(chunk({"content": p})) for p in pieces]
                events += script.stream_tail or ["[DONE]"]
                for data in events:
                    self.wfile.write(f"data: {data}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(script.piece_delay_s)
                self.close_connection = True

        return Handler


def completion(content: str) -> dict[str, Any]:
    """A `chat.completion` whose message is `content`."""
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 0,
        "model": "scripted",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }


def chunk(delta: dict[str, str]) -> dict[str, Any]:
    """A `chat.completion.chunk` adding `delta`."""
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "scripted",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }
