"""A peer server outlives no benchmark: once its parent is gone (even killed with
SIGKILL, which runs no cleanup), it stops itself with SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
import time


def exit_with_parent(parent: int, *, interval: float = 1.0) -> None:
    """Watch, from a daemon thread, that ``parent`` is still our parent."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
