"""Raw HTTP/1.1 request text (CSIC 2010 style), and the request-target
parsing every reader shares.

Target rules (all readers): the path is percent-decoded for readability
except ``%2F``, which stays encoded so that decoding never adds a path
segment; the query becomes an ordered list of percent-decoded
``(name, value)`` pairs (``+`` is a space). Percent-escapes decode as UTF-8
when they form valid UTF-8, else as Latin-1 (CSIC 2010 is Latin-1). When
decoding changed the target, the undecoded path is kept in
``extra["raw_path"]``. The fragment is dropped.

Raw-HTTP format: requests one after another, each a request line
(``METHOD absolute-URI-or-origin-form HTTP/x.y``), header lines, a blank line
and a body of ``Content-Length`` bytes. Text is Latin-1; blank lines between
requests are ignored. Requests only: ``response`` is ``None``. Lines that are
not a request where one should start are reported as one bad record.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import unquote_to_bytes

from apiward.ingest.base import Bad, ReadOptions, Record, make_request
from apiward.model.call import ApiCall, Peer

__all__ = ["RawHttpReader", "split_target", "decode_path", "parse_query", "pct_decode", "default_port"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_METHOD_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ-_")
BAD_RAW_CAP = 4096


def default_port(scheme: str) -> int:
    return _DEFAULT_PORTS.get(scheme, 0)


def pct_decode(s: str, plus: bool = False) -> str:
    """Percent-decode ``s`` (``+`` as space when ``plus``): UTF-8 when the
    bytes are valid UTF-8, else Latin-1; never raises."""
    if plus and "+" in s:
        s = s.replace("+", " ")
    if "%" not in s:
        return s
    out = _decoded.get(s)
    if out is None:
        raw = unquote_to_bytes(s)
        try:
            out = raw.decode("utf-8")
        except UnicodeDecodeError:
            out = raw.decode("latin-1")
        if len(_decoded) >= 100_000:
            _decoded.clear()
        _decoded[s] = out
    return out


_decoded: dict[str, str] = {}  # values repeat a lot in real traffic


def decode_path(path: str) -> str:
    """Percent-decode a path except ``%2F`` (an encoded slash stays one)."""
    if "%" not in path:
        return path
    if "%2f" in path:
        path = path.replace("%2f", "%2F")
    if "%2F" in path:
        return "%2F".join(pct_decode(p) for p in path.split("%2F"))
    return pct_decode(path)


def parse_query(qs: str) -> list[tuple[str, str]]:
    """Ordered, percent-decoded ``(name, value)`` pairs; blank values kept."""
    out: list[tuple[str, str]] = []
    if not qs:
        return out
    for part in qs.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        out.append((pct_decode(name, True), pct_decode(value, True)))
    return out


def split_target(target: str) -> tuple[str, str, str, str]:
    """``(scheme, host, path, query)`` of an absolute URI or origin-form
    target; scheme and host are ``""`` for origin-form. The path is raw."""
    scheme = host = ""
    hash_at = target.find("#")
    if hash_at >= 0:
        target = target[:hash_at]
    if not target.startswith("/"):
        sep = target.find("://")
        if 0 < sep < 16:
            scheme = target[:sep].lower()
            rest = target[sep + 3 :]
            cut = len(rest)
            for ch in "/?":
                i = rest.find(ch, 0, cut)
                if i >= 0:
                    cut = i
            host = rest[:cut]
            at = host.rfind("@")
            if at >= 0:
                host = host[at + 1 :]  # never keep userinfo credentials
            target = rest[cut:]
        elif target == "*":
            return "", "", "*", ""
    path, _, query = target.partition("?")
    return scheme, host, path or "/", query


def host_port(host: str, scheme: str) -> tuple[str, int]:
    """Split ``host[:port]`` (IPv6 in brackets) into name and port."""
    if host.startswith("["):
        end = host.find("]")
        name = host[1:end] if end > 0 else host
        rest = host[end + 1 :] if end > 0 else ""
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = host.partition(":") if host.count(":") == 1 else (host, "", "")
    return name, int(port) if port.isdigit() else default_port(scheme)


def target_parts(target: str, default_scheme: str = "http") -> tuple[str, str, str, list[tuple[str, str]], str]:
    """``(scheme, host, decoded path, query pairs, raw path)`` for readers."""
    scheme, host, raw_path, qs = split_target(target)
    return scheme or default_scheme, host, decode_path(raw_path), parse_query(qs), raw_path


def _is_request_line(line: bytes) -> bool:
    parts = line.split(b" ")
    if len(parts) < 3 or not parts[-1].startswith(b"HTTP/"):
        return False
    method = parts[0]
    return 0 < len(method) <= 16 and all(c in _METHOD_CHARS for c in method)


class RawHttpReader:
    """Raw HTTP/1.1 request text, as in the CSIC 2010 dataset."""

    name = "raw-http"
    description = "raw HTTP/1.1 requests as text (CSIC 2010 style; Latin-1; requests only)"

    def sniff(self, head: bytes, filename: str) -> float:
        for line in head.split(b"\n", 16):
            line = line.rstrip(b"\r")
            if not line.strip():
                continue
            if _is_request_line(line):
                return 0.9 if b"\n" in head else 0.5
            return 0.0
        return 0.0

    def read(self, stream: BinaryIO, opts: ReadOptions) -> Iterator[Record]:
        index = 0
        src = opts.source_name or self.name
        cap = opts.body_cap
        cut = []
        overlong: list[str] = []  # lines cut at max_line_bytes since the last request
        max_line = opts.max_line_bytes
        max_record = opts.max_record_bytes
        peek = getattr(stream, "peek", None)

        def readline() -> bytes:
            """One line, at most ``max_line`` bytes held: the rest of a
            longer line is read and dropped, and noted in ``overlong``."""
            try:
                if not max_line:
                    return stream.readline()
                line = stream.readline(max_line + 1)
                if len(line) > max_line and not line.endswith(b"\n"):
                    size = len(line)
                    while True:
                        more = stream.readline(1 << 20)
                        size += len(more)
                        if not more or more.endswith(b"\n"):
                            break
                    overlong.append(f"line longer than max_line_bytes ({max_line:,} bytes; {size:,}): not read")
                    return line[:max_line] + b"\n"
                return line
            except (EOFError, OSError) as exc:  # a cut .gz
                cut.append(str(exc))
                return b""

        def read(n: int) -> bytes:
            try:
                return stream.read(n)
            except (EOFError, OSError) as exc:
                cut.append(str(exc))
                return b""

        def drop(n: int) -> int:
            """Read and drop ``n`` bytes in chunks; returns how many came."""
            got = 0
            while got < n:
                piece = read(min(n - got, 1 << 20))
                if not piece:
                    break
                got += len(piece)
            return got

        def skip_blank_lines() -> None:
            """Runs of empty lines skipped in C (a gzip of newlines is cheap)."""
            if peek is None:
                return
            while True:
                try:
                    data = peek(1 << 16)
                except (EOFError, OSError):
                    return
                k = len(data) - len(data.lstrip(b"\r\n"))
                if k == 0 or not read(k):
                    return

        junk: list[bytes] = []
        line = readline()
        while line:
            stripped = line.rstrip(b"\r\n")
            if not stripped.strip():
                skip_blank_lines()
                line = readline()
                continue
            if overlong:  # this line itself was cut
                yield index, Bad(overlong[0], stripped[:BAD_RAW_CAP])
                overlong.clear()
                index += 1
                line = readline()
                continue
            if not _is_request_line(stripped):
                junk_size = 0
                while line and not _is_request_line(line.rstrip(b"\r\n")):
                    if junk_size < BAD_RAW_CAP:
                        junk.append(line)
                        junk_size += len(line)
                    line = readline()
                yield index, Bad("not an HTTP request line where a request should start", b"".join(junk)[:BAD_RAW_CAP])
                index += 1
                junk.clear()
                overlong.clear()
                continue
            head = [line]
            headers: list[tuple[str, str]] = []
            bad = ""
            length = 0
            head_size = len(line)
            while True:
                line = readline()
                if not line:
                    bad = "truncated: input ends inside the request headers"
                    break
                h = line.rstrip(b"\r\n")
                if not h:
                    break
                head_size += len(line)
                if max_record and head_size > max_record:
                    bad = bad or f"request headers longer than max_record_bytes ({max_record:,} bytes): not read"
                    continue
                head.append(line)
                name, sep, value = h.decode("latin-1").partition(":")
                if not sep:
                    bad = bad or f"malformed header line {h[:60]!r}"
                    continue
                name = name.strip()
                value = value.strip()
                headers.append((name, value))
                if name.lower() == "content-length":
                    if value.isdigit() and len(value) <= 18:
                        length = int(value)
                    else:
                        bad = bad or f"invalid Content-Length {value[:30]!r}"
            body = b""
            if overlong:
                bad = bad or overlong[0]
                overlong.clear()
            if not bad and length:
                if max_record and length > max_record:
                    got = drop(length)
                    bad = f"body longer than max_record_bytes (Content-Length {length:,}; {got:,} bytes dropped)"
                else:
                    body = read(length)
                    if len(body) < length:
                        bad = f"truncated: Content-Length {length} but only {len(body)} body bytes"
                    head.append(body)
            if bad:
                yield index, Bad(bad, b"".join(head)[:BAD_RAW_CAP])
                index += 1
                line = readline()
                continue
            method, _, rest = stripped.decode("latin-1").partition(" ")
            target, _, version = rest.rpartition(" ")
            scheme, host, path, query, raw_path = target_parts(target)
            request = make_request(
                method=method,
                path=path,
                query=query,
                headers=headers,
                body=body,
                scheme=scheme,
                host=host,
                http_version=version,
                cap=cap,
            )
            name, port = host_port(request.host, scheme)
            call = ApiCall(
                id=f"{src}#{index}",
                request=request,
                dst=Peer(ip="", port=port),
                source=self.name,
                extra={"raw_path": raw_path} if raw_path != path else {},
            )
            yield index, call
            index += 1
            line = readline()
        if cut:
            yield index, Bad(f"truncated: compressed input ends early ({cut[0]})", b"")
