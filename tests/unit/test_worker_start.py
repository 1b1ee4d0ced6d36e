"""What a `registry serve` worker does once its app is loaded, before it serves."""

from __future__ import annotations

import gc
import signal
from types import SimpleNamespace

from commandline import serve


def test_a_worker_leaves_what_it_loaded_out_of_later_collections_and_ends_streams_on_term() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    assert gc.get_freeze_count() == 0
    try:
        serve._ready_worker(SimpleNamespace(wsgi=None, cfg=None))
        # The modules, functions and app objects loaded so far are no longer scanned by a full collection.
        assert gc.get_freeze_count() > 10_000
        assert signal.getsignal(signal.SIGTERM) not in (previous, signal.SIG_DFL)
    finally:
        gc.unfreeze()
        signal.signal(signal.SIGTERM, previous)
