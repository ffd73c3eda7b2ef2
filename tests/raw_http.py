"""HTTP requests on a plain socket, for what an HTTP client library will not send: a Content-Length with nothing
behind it, a chunked body that never ends, a body the server refuses halfway. The server may answer at any
point; the request stops sending as soon as it does."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class RawReply:
    status: int | None  # None: the server closed (or reset) without an answer that could be read
    head: bytes  # the status line and headers, as far as they were read
    sent: int  # body bytes that went out before the server answered or closed


def post_raw(
    port: int,
    path: str,
    headers: dict[str, str],
    chunks: Iterable[bytes] = (),
    *,
    chunked: bool = False,
    finish: bool = True,
    timeout: float = 30.0,
) -> RawReply:
    """POST `chunks` to 127.0.0.1:`port` under `headers` (give Content-Length yourself when the body should have
    one: it need not tell the truth). `chunked` frames each piece as HTTP chunks and, with `finish`, ends with
    the last chunk; `finish=False` leaves the body open forever. Sending stops as soon as the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        head = [f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"]
        head += [f"{name}: {value}\r\n" for name, value in headers.items()]
        if chunked:
            head.append("Transfer-Encoding: chunked\r\n")
        sock.sendall(("".join(head) + "\r\n").encode("latin-1"))
        sent, answered = 0, False
        try:
            for chunk in chunks:
                if select.select([sock], [], [], 0)[0]:
                    answered = True
                    break
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                sent += len(chunk)
            if chunked and finish and not answered:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed while the body was going out
            pass
        reply = b""
        try:
            while b"\r\n\r\n" not in reply:
                more = sock.recv(65536)
                if not more:
                    break
                reply += more
        except OSError:
            pass
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else None
    return RawReply(status, reply.split(b"\r\n\r\n", 1)[0], sent)
