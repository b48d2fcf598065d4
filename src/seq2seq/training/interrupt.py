"""Ctrl-C / SIGTERM handling: ask the training loop to stop at the next step boundary."""

import signal
import threading


class StopRequested:
    """Within `with StopRequested() as stop:`, SIGINT and SIGTERM set `stop.requested` instead of
    killing the process, so the loop can save a resumable checkpoint. A second signal aborts at once."""

    def __init__(self):
        self.requested = False
        self.signal_name = None
        self.signum = 0
        self._previous = {}

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum
        self.signal_name = signal.Signals(signum).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        return False
