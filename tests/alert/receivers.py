"""Real receivers on loopback for sink tests: an HTTP server that records
requests (and can answer with a chosen status), syslog over UDP and TCP."""

from __future__ import annotations

import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HttpReceiver:
    """Records ``(path, headers, body)``; ``status``/``reply`` set the answer."""

    def __init__(self, port: int = 0, status: int = 200, reply: bytes = b'{"ok": true}') -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = status
        self.reply = reply
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(n)
                outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(outer.reply)))
                self.end_headers()
                self.wfile.write(outer.reply)

            def log_message(self, *a: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), H)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class UdpReceiver:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]

    def recv(self) -> bytes:
        return self.sock.recvfrom(65535)[0]

    def stop(self) -> None:
        self.sock.close()


class TcpReceiver:
    """Collects the byte stream of every connection."""

    def __init__(self) -> None:
        self.data = bytearray()
        outer = self

        class H(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                while True:
                    chunk = self.request.recv(65536)
                    if not chunk:
                        break
                    outer.data += chunk

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def frames(self) -> list[bytes]:
        """RFC 6587 octet-counted frames."""
        out, buf = [], bytes(self.data)
        while buf:
            sp = buf.index(b" ")
            n = int(buf[:sp])
            out.append(buf[sp + 1 : sp + 1 + n])
            buf = buf[sp + 1 + n :]
        return out

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
