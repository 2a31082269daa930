"""A one-line progress bar on stderr; silent when stderr is not a terminal."""
import sys
import time


class Bar:
    def __init__(self, label: str, stream=None, enabled=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label, self.width = label, width
        self._last = 0.0

    def update(self, fraction: float) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and fraction < 1.0):
            return
        self._last = now
        done = int(self.width * min(1.0, fraction))
        self.stream.write(f"\r{self.label} [{'#' * done}{'.' * (self.width - done)}] {fraction * 100:5.1f}%")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * (len(self.label) + self.width + 12) + "\r")
            self.stream.flush()
