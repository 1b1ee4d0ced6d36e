"""The end of an API process: its background threads stop before its store closes.

A process that exits with threads still using the store can hang at interpreter exit
(a daemon thread frozen while it holds the connection pool's lock, and the pool closed
from a finaliser), until the server kills it. `close()` ends them in order instead.
"""

from __future__ import annotations

import threading

from flask import Flask

from api import feeds

JOIN_SECONDS = 5.0  # a thread that takes longer is left to the interpreter's exit


def close(app: Flask) -> None:
    """End streams and webhook deliveries, stop following the log, wait for those threads, close the store."""
    feeds.stop(app)
    stop_following: threading.Event | None = app.extensions.get("follower_stop")
    if stop_following is not None:
        stop_following.set()
    follower: threading.Thread | None = app.extensions.get("follower_thread")
    if follower is not None:
        follower.join(JOIN_SECONDS)
    delivery = app.extensions.get("webhook_delivery")
    if delivery is not None:
        delivery.stop(wait=True)  # a delivery under way finishes its POST and stores it
    app.extensions["registry"].close()
