"""What gunicorn answers itself, before the app runs, as the app's own RFC 9457 problems.

gunicorn's parser refuses some requests before the Flask app sees them: a request line
over its limit (414), headers too many or too large (431), a malformed request line,
method, version or header (400), an unmet `Expect` (417), a transfer coding it does not
know (501). Its worker's `handle_error` writes those answers with
`gunicorn.util.write_error`, as an HTML page; a registry worker puts `write_problem` in
its place, so they are `application/problem+json` with `type`, `title`, `status` and
`detail`, like every other error (api/errors.py), and keep their status.
"""

from __future__ import annotations

import json
import socket

from gunicorn import util

MAX_DETAIL = 300  # characters of gunicorn's message kept (it may quote the refused request line)
FAILED = "the server failed; the error is logged"  # api/errors.py's detail of a 500


def write_problem(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """`gunicorn.util.write_error`'s answer, as problem+json: the status line and `Connection: close`
    as gunicorn writes them, `reason` as the title and gunicorn's message as the detail."""
    detail = mesg[:MAX_DETAIL] or (FAILED if status_int >= 500 else reason)
    body = json.dumps({"type": "about:blank", "title": reason, "status": status_int, "detail": detail}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\n"
            "Connection: close\r\n"
            "Content-Type: application/problem+json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "\r\n").encode("latin-1")
    util.write_nonblock(sock, head + body)


def answer_problems() -> None:
    """In a worker process: gunicorn's own error answers are problems from now on."""
    util.write_error = write_problem
