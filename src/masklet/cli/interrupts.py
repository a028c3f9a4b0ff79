"""Keep Ctrl-C from cutting a file in half: `with deferred_interrupt() as caught: ...` holds
SIGINT back while the block runs and raises `KeyboardInterrupt` after it (or, with
`reraise=False`, only records it in `caught.received`)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType


@dataclass
class CaughtInterrupt:
    """Whether a SIGINT arrived while it was being held back."""

    received: bool = False


@contextlib.contextmanager
def deferred_interrupt(reraise: bool = True) -> Iterator[CaughtInterrupt]:
    """Hold SIGINT back during the block (main thread only; elsewhere a no-op)."""
    caught = CaughtInterrupt()
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def remember(signum: int, frame: FrameType | None) -> None:
        caught.received = True

    previous = signal.signal(signal.SIGINT, remember)
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if caught.received and reraise:
        raise KeyboardInterrupt
