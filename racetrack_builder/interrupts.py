"""Holding Ctrl-C (and SIGTERM, SIGHUP) back while the engine does something that must not be cut.

Creating a container is one request whose effect outlives an interrupted client: cut while the
request is in flight, the engine still creates the container a moment later, after our cleanup
looked for it and found nothing, and the container is left behind. Inside :func:`deferred`, the
first stop signal is noted and acted on once the block is done, when the container's name and id
are known and the caller's cleanup can remove it; a second one acts at once, for a user who means
it (an engine that hangs).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Run the block with stop signals held back (only in the main thread, where they arrive)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[signal.Signals, Any] = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if pending:  # the second one: act now
            _deliver(previous, signum, frame)
        pending.append(signum)

    for sig in _STOP_SIGNALS:
        signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if pending:
            _deliver(previous, pending[0], None)


def _deliver(handlers: dict[signal.Signals, Any], signum: int, frame: FrameType | None) -> None:
    """Act on ``signum`` as the handler in place before :func:`deferred` would have."""
    handler = handlers.get(signal.Signals(signum))
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
