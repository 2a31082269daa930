"""Clocks are injected so the same cycle code runs in wall or virtual time."""
import time


class WallClock:
    def now(self) -> float:
        return time.time()


class VirtualClock:
    def __init__(self, start: float = 0.0):
        self.t = float(start)

    def now(self) -> float:
        return self.t

    def advance_to(self, t: float) -> None:
        if t < self.t:
            raise ValueError(f"virtual time cannot go back from {self.t} to {t}")
        self.t = float(t)
