"""A circuit breaker per API base: stop calling Tencent for a while once it keeps failing.

Without it, every request during an outage waits out the timeout and the retries (seconds each)
before its 503, holding a connection and a worker's attention while more pile up. After
``failures`` calls in a row found no usable answer, the circuit *opens*: calls fail at once with
:class:`CircuitOpen` (a :class:`WeChatUnavailable`, so callers answer 503 as before) for
``open_seconds``. Then it is *half-open*: one call goes through as a probe while the others keep
failing fast; the probe's success closes the circuit, its failure opens it again.

What counts as a failure is decided by the transport: no answer, a timeout, HTTP 5xx, or errcode
-1 after its retries. Any answer with another errcode is Tencent working, so it counts as success.
Each process (each Sanic worker, each job worker) has its own breakers: no Redis round trip in
the way of deciding that Tencent is down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from wechat.errors import WeChatUnavailable


class CircuitOpen(WeChatUnavailable):
    """The call was not made: the API base failed too often lately."""

    def __init__(self, base: str, retry_in: float) -> None:
        super().__init__(f"{base}: circuit open, next try in {retry_in:.1f}s")
        self.retry_in = retry_in


@dataclass
class Circuit:
    """The state of one API base."""

    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


@dataclass
class CircuitBreaker:
    failures: int = 5
    open_seconds: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _circuits: dict[str, Circuit] = field(default_factory=dict)

    def state(self, base: str) -> str:
        """``closed``, ``open`` or ``half-open`` (for logs and tests)."""
        circuit = self._circuits.get(base)
        if circuit is None or circuit.opened_at is None:
            return "closed"
        if self.clock() - circuit.opened_at < self.open_seconds:
            return "open"
        return "half-open"

    def before_call(self, base: str) -> None:
        """Raise :class:`CircuitOpen` unless a call to ``base`` may go out now. A caller that
        passes must report the outcome with :meth:`succeeded` or :meth:`failed`."""
        circuit = self._circuits.setdefault(base, Circuit())
        if circuit.opened_at is None:
            return
        waited = self.clock() - circuit.opened_at
        if waited < self.open_seconds:
            raise CircuitOpen(base, self.open_seconds - waited)
        if circuit.probing:
            # One probe at a time: a recovering API is not handed the whole backlog at once.
            raise CircuitOpen(base, 0.0)
        circuit.probing = True

    def succeeded(self, base: str) -> None:
        self._circuits[base] = Circuit()

    def failed(self, base: str) -> None:
        circuit = self._circuits.setdefault(base, Circuit())
        circuit.failures += 1
        if circuit.probing or circuit.failures >= self.failures:
            circuit.opened_at = self.clock()
        circuit.probing = False

    def abandoned(self, base: str) -> None:
        """The call ended without an outcome (cancelled): let the next one probe."""
        circuit = self._circuits.get(base)
        if circuit is not None:
            circuit.probing = False
