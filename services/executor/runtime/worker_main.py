"""The loop each worker process runs: receive a call, run it, send back the result.

Messages on the pipe (pickled tuples):
    parent -> worker: ("run", fn, args, kwargs)
    worker -> parent: ("progress", fraction, note) ... then ("ok", result)
                      or ("error", type_name, message, traceback_text, pickled_exception|None)
"""

from __future__ import annotations

import contextlib
import pickle
import signal
import traceback
from multiprocessing.connection import Connection
from typing import Any

import shared.tasks


def _die_with_parent() -> None:
    # Linux: the kernel kills this worker when the process that forked it goes away, so a
    # SIGKILLed executor never leaves a runaway loop behind.
    with contextlib.suppress(OSError, AttributeError):  # no glibc, or no prctl: not Linux
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _error(e: BaseException) -> tuple[Any, ...]:
    blob: bytes | None
    try:
        blob = pickled = pickle.dumps(e)
        pickle.loads(pickled)  # some exceptions pickle but cannot be rebuilt
    except Exception:
        blob = None
    text = "".join(traceback.format_exception(e))[-8000:]
    return ("error", type(e).__name__, str(e), text, blob)


def worker_main(conn: Connection) -> None:
    _die_with_parent()
    # Ctrl-C reaches the whole process group; the executor decides what its workers do.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    shared.tasks._install_progress_sink(lambda f, note: conn.send(("progress", f, note)))
    while True:
        try:
            kind, fn, args, kwargs = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if kind != "run":
            continue
        try:
            out: tuple[Any, ...] = ("ok", fn(*args, **kwargs))
        except BaseException as e:
            out = _error(e)
        try:
            conn.send(out)
        except (EOFError, OSError, BrokenPipeError):
            return
        except Exception as e:  # the result did not pickle
            conn.send(_error(TypeError(f"result of {getattr(fn, '__name__', fn)} cannot be "
                                       f"sent back: {e}")))
