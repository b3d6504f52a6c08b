"""FakeOpenAIServer: an OpenAI-compatible /v1/chat/completions on 127.0.0.1 whose replies a
test writes as a function of the request, for the litellm path without a network."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Scripted:
    """One HTTP answer: a chat completion whose content is `text`, or an error status."""

    text: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0  # wait this long before answering (a hung server)
    finish_reason: str = "stop"


def ok(text: str) -> Scripted:
    return Scripted(text=text)


def rate_limited(retry_after: float | None) -> Scripted:
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    return Scripted(status=429, headers=headers)


def server_error(status: int = 500) -> Scripted:
    return Scripted(status=status)


def hang(seconds: float, then: str = "too late") -> Scripted:
    return Scripted(text=then, hang_s=seconds)


# reply(request_body, request_number) -> Scripted
Reply = Callable[[dict[str, Any], int], Scripted]


class FakeOpenAIServer:
    """Use as a context manager; `base_url` goes to litellm as api_base."""

    def __init__(self, reply: Reply):
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        # A short poll interval: shutdown() waits up to one interval.
        threading.Thread(target=self._server.serve_forever, args=(0.02,), name="fake-openai", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # release hung handlers
        self._server.shutdown()
        self._server.server_close()

    @property
    def count(self) -> int:
        return len(self.requests)

    def _answer(self, body: dict[str, Any], authorization: str) -> Scripted:
        with self._lock:
            self.requests.append(body)
            self.authorizations.append(authorization)
            number = len(self.requests)
        return self.reply(body, number)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                scripted = server._answer(body, self.headers.get("Authorization", ""))
                if scripted.hang_s and server._stopping.wait(scripted.hang_s):
                    return
                if scripted.status != 200:
                    error = {"error": {"message": f"scripted {scripted.status}", "type": "server_error", "code": scripted.status}}
                    return self._send(scripted.status, error, scripted.headers)
                self._send(200, _completion(body, scripted))

            def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        return Handler


def _completion(body: dict[str, Any], scripted: Scripted) -> dict[str, Any]:
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    completion_tokens = len(scripted.text.split())
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "fake-model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": scripted.text}, "finish_reason": scripted.finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
