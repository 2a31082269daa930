"""A one-line progress bar on stderr; silent when stderr is not a terminal."""
import logging
import sys
import time


class Bar:
    """Used as a context manager around the work it shows: meanwhile a log line (a
    warning of the replayed factory) first wipes the bar, else the line would be
    glued to its end; the next update draws the bar again below it."""

    def __init__(self, label: str, stream=None, enabled=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label, self.width = label, width
        self._last = 0.0
        self._drawn = False

    def update(self, fraction: float) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and fraction < 1.0):
            return
        self._last = now
        done = int(self.width * min(1.0, fraction))
        self.stream.write(f"\r{self.label} [{'#' * done}{'.' * (self.width - done)}] {fraction * 100:5.1f}%")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\r" + " " * (len(self.label) + self.width + 12) + "\r")
            self.stream.flush()
            self._drawn = False

    def _before_log(self, record) -> bool:
        """A logging filter: never drops a record, only wipes the bar first."""
        self.close()
        self._last = 0.0  # redraw at the next update
        return True

    def __enter__(self) -> "Bar":
        for handler in logging.getLogger().handlers:
            handler.addFilter(self._before_log)
        return self

    def __exit__(self, *exc) -> None:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self._before_log)
        self.close()
