"""Ctrl-C (SIGINT) for the commands: noted, not raised, where an exception cannot be handled.

A KeyboardInterrupt raised inside the import machinery (a command loads its modules lazily, a
few tenths of a second, more on a busy machine) or while an event loop is being set up is
reported by Python itself, with a traceback, and can even break a half-imported extension
module. :func:`noted_interrupts` notes Ctrl-C there instead; the command answers it once it can
(``imuhip._launch``, :func:`imuhip.cli.main`, ``imuhip live``, ``rom-test --live``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

TYPE_CHECKING = False  # not typing's: this module loads before the CLI (imuhip._launch)

if TYPE_CHECKING:
    import asyncio

__all__ = ["interrupt_event", "noted_interrupts"]


@contextmanager
def noted_interrupts(*, raise_at_end: bool = True) -> Iterator[threading.Event]:
    """Inside: Ctrl-C (SIGINT) only sets the yielded event; at the end it raises KeyboardInterrupt
    (unless ``raise_at_end`` is false: a session that stops on the event, see ``imuhip live``).

    A no-op (an event never set) outside the main thread (only it may set signal handlers) or
    where a caller has its own SIGINT handler. An event loop started inside may install its own
    handler meanwhile; the one from before is restored at the end.
    """
    hit = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield hit
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield hit
        return
    signal.signal(signal.SIGINT, lambda _signum, _frame: hit.set())
    try:
        yield hit
    finally:
        signal.signal(signal.SIGINT, previous)
    if hit.is_set() and raise_at_end:
        raise KeyboardInterrupt


def interrupt_event(noted: threading.Event) -> asyncio.Event:
    """In a running event loop: an event set by Ctrl-C (SIGINT) or SIGTERM (where the loop can
    take signals), or at once if Ctrl-C came before, while ``noted`` watched
    (``imuhip live`` and ``rom-test --live`` stop their session on it)."""
    import asyncio  # only the commands with a loop need it, not the start-up

    ev = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, ev.set)
        loop.add_signal_handler(signal.SIGTERM, ev.set)
    if noted.is_set():
        ev.set()
    return ev
