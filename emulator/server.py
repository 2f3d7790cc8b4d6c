"""A threaded loopback HTTP server for the emulator.

It is werkzeug's threaded dev server with its own request handler, because the stock one answers every
request with ``Connection: close``: this one keeps HTTP/1.1 connections alive (so a client's connection
reuse can be observed), counts accepted TCP connections, and can drop a connection with a TCP RST
(the RESET fault).
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import struct
import threading
import traceback
from types import TracebackType
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from emulator.core import IdentityCloudEmulator

MAX_BODY_BYTES = 16 * 1024 * 1024
IDLE_TIMEOUT_SECONDS = 60.0
"""A kept-alive connection idle for this long is closed by the server."""

_log = logging.getLogger("emulator")


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Handler(WSGIRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_SECONDS
    # The status line and headers, then the body, are two writes: with Nagle's algorithm on, the body
    # waits for the client's delayed ACK of the headers, adding ~40 ms to every kept-alive exchange.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self._host_noted = False
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        if environ.get("wsgi.input_terminated"):  # Transfer-Encoding: chunked, dechunked by werkzeug
            body: bytes = environ["wsgi.input"].read(MAX_BODY_BYTES + 1)
        else:
            raw = environ.get("CONTENT_LENGTH") or "0"
            if not raw.isdigit():
                raise _BadRequest(400, "Bad Content-Length")
            length = int(raw)
            if length > MAX_BODY_BYTES:
                raise _BadRequest(413, "Request Entity Too Large")
            body = self.rfile.read(length)
            if len(body) < length:
                raise ConnectionAbortedError("client closed the connection mid-body")
        if len(body) > MAX_BODY_BYTES:
            raise _BadRequest(413, "Request Entity Too Large")
        return body

    def _send(self, status: str, headers: list[tuple[str, str]], data: bytes) -> None:
        code_str, _, reason = status.partition(" ")
        code = int(code_str)
        self.send_response(code, reason or None)
        for key, value in headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        if not (100 <= code < 200 or code in (204, 304)):
            self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        elif self.request_version == "HTTP/1.0":
            self.send_header("Connection", "keep-alive")
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)
        self.wfile.flush()

    def _reset_connection(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.server.mark_for_reset(self.connection)

    def run_wsgi(self) -> None:
        if not self._host_noted:
            self._host_noted = True
            self.server.emulator.note_connection_host(self.headers.get("Host", ""))
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        try:
            body = self._read_body(environ)
        except _BadRequest as exc:
            self.close_connection = True
            self._send(f"{exc.status} {exc.reason}", [("Content-Type", "text/plain")], exc.reason.encode())
            return
        except (OSError, ValueError):
            self.close_connection = True
            return
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("wsgi.input_terminated", None)
        environ.pop("HTTP_TRANSFER_ENCODING", None)

        started: list[Any] = []
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return chunks.append

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except ConnectionError:  # the RESET fault (EmulatorConnectionReset), or the client went away
            self._reset_connection()
            return
        except Exception:
            _log.error(
                "emulator: error on request %s %s\n%s", self.command, self.path, traceback.format_exc()
            )
            self.close_connection = True
            started[:] = ["500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")]]
            chunks[:] = [b"Internal Server Error"]
        try:
            self._send(started[0], started[1], b"".join(chunks))
        except ConnectionError:
            self.close_connection = True

    def log(self, type: str, message: str, *args: Any) -> None:
        if not self.server.quiet:
            super().log(type, message, *args)


class _Server(ThreadedWSGIServer):
    def __init__(self, host: str, port: int, emulator: IdentityCloudEmulator, quiet: bool) -> None:
        self.emulator = emulator
        self.quiet = quiet
        self.accepted = 0
        self._conn_lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._to_reset: set[socket.socket] = set()
        super().__init__(host, port, emulator.app, handler=_Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self._conn_lock:
            self.accepted += 1
        self.emulator.note_connection_accepted()
        return conn, addr

    def track(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._live.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._live.discard(conn)

    def mark_for_reset(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._to_reset.add(conn)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            reset = request in self._to_reset
            self._to_reset.discard(request)
        if reset:  # no FIN first: close() with SO_LINGER 0 sends a RST
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def close_live_connections(self) -> None:
        with self._conn_lock:
            live = list(self._live)
        for conn in live:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class EmulatorServer:
    """The emulator served over HTTP on loopback, in a daemon thread."""

    def __init__(
        self, emulator: IdentityCloudEmulator, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True
    ) -> None:
        self.emulator = emulator
        self._server = _Server(host, port, emulator, quiet)
        self.host = host
        self.port: int = self._server.port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"identity-cloud-emulator:{self.port}",
            daemon=True,
        )
        self._stopped = False

    @property
    def url(self) -> str:
        """Base URL for both Social Login (``/api/v2/...``) and Capture (``/oauth/...``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted by this server (the emulator's count spans all its servers)."""
        return self._server.accepted

    def start(self) -> EmulatorServer:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (for ``python -m emulator``)."""
        self._server.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        """Stop accepting, close open (kept-alive) connections, and wait for the server thread."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
        self._server.close_live_connections()

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()


def serve(
    emulator: IdentityCloudEmulator, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True
) -> EmulatorServer:
    """Start serving ``emulator`` on ``host:port`` (port 0: a free port) in a daemon thread."""
    return EmulatorServer(emulator, host, port, quiet=quiet).start()
