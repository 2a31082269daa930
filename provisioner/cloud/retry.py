"""Jittered exponential back-off for cloud calls, within a time budget.

Time is read from the injected clock and waits go through an injected ``sleep``,
so the simulator can skip them in virtual time.
"""
import random
from typing import Callable, Optional

from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, HTTPClientError

THROTTLED = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled",
             "TooManyRequestsException", "SlowDown", "ServiceUnavailable", "Unavailable", "InternalError",
             "InternalFailure", "ServerInternal"}
# No capacity for the type or place: a 500 on AWS, but an answer, not a fault (the next choice may have room).
CAPACITY = {"InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity"}


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return type(exc).__name__


def status(exc: BaseException) -> int:
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return int(getattr(exc, "http_code", 0) or getattr(exc, "code", 0) or 0)


def transient(exc: BaseException) -> bool:
    """Throttling, 5xx and dropped connections: worth another try."""
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return True
    code = error_code(exc)
    if code in CAPACITY:
        return False
    return code in THROTTLED or status(exc) >= 500 or status(exc) == 429


def ambiguous(exc: BaseException) -> bool:
    """The request may have been carried out although it failed (not a throttle)."""
    return transient(exc) and error_code(exc) not in ("RequestLimitExceeded", "Throttling", "ThrottlingException",
                                                      "RequestThrottled", "TooManyRequestsException", "SlowDown")


class Budget:
    """Retries for one cloud action: waits ``base * 2**attempt`` at most (full jitter, capped)."""

    def __init__(self, clock, sleep: Callable[[float], None], seconds: float, base: float = 0.5,
                 cap: float = 8.0, rng: Optional[random.Random] = None, is_transient=transient):
        self.clock, self.sleep = clock, sleep
        self.deadline = clock.now() + seconds
        self.base, self.cap = base, cap
        self.rng = rng or random.Random()
        self.is_transient = is_transient
        self.retries = 0
        self.errors = []

    def call(self, fn: Callable, *args, before_retry: Optional[Callable] = None, **kwargs):
        """``fn(*args, **kwargs)``, retried on transient errors until the budget runs out.

        ``before_retry(exc)`` may return a result to use instead of retrying (e.g. the
        instances an ambiguous failed launch did start).
        """
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if not self.is_transient(exc):
                    raise
                self.errors.append(error_code(exc))
                wait = self.rng.uniform(0, min(self.cap, self.base * 2 ** attempt))
                if self.clock.now() + wait > self.deadline:
                    raise
                self.sleep(wait)
                self.retries += 1
                attempt += 1
                if before_retry is not None:
                    found = before_retry(exc)
                    if found is not None:
                        return found
