"""Admission control: bytes of requests in flight, reserved by receivers before they decode a request.

A memory limiter that only measures resident memory every ``check_interval`` lets any number of requests in
between two checks; under a burst of large requests the process passes its limit before the next check sees it.
So receivers reserve each request's size here before decoding it (before reading its body, for HTTP), and
release it when the request is answered; what cannot be reserved is refused at once with a retryable overload
(RESOURCE_EXHAUSTED + RetryInfo, 429 + Retry-After), before it costs memory.

Two kinds of budget answer a reservation:
- each receiver server's own cap on its bytes in flight (on even without a memory limiter);
- every running ``memory_limiter`` (:class:`Gate`), process-wide since memory is: it admits a request while the
  resident memory it last measured plus what is in flight plus the request stays under its hard limit.
"""

from __future__ import annotations

from typing import Protocol

from gateway.errors import OverloadedError

__all__ = ["EXPANSION", "Budget", "Gate", "gates", "register", "reserve", "unregister"]

#: Memory a request takes while in flight, as a multiple of its size on the wire: the bytes, the decoded
#: message (about twice the bytes) and its serialization on the way out.
EXPANSION = 4


class Gate(Protocol):
    """A process-wide admission check (the memory limiter's guard)."""

    def try_admit(self, size: int) -> OverloadedError | None:
        """Reserve ``size`` bytes, or say why not (nothing is reserved then)."""

    def release(self, size: int) -> None: ...


_gates: list[Gate] = []


def register(gate: Gate) -> None:
    if gate not in _gates:
        _gates.append(gate)


def unregister(gate: Gate) -> None:
    if gate in _gates:
        _gates.remove(gate)


def gates() -> list[Gate]:
    return list(_gates)


class Budget:
    """One server's bytes in flight, capped at ``limit`` (0: no cap of its own)."""

    __slots__ = ("in_flight", "limit", "retry_after")

    def __init__(self, limit: int, retry_after: float = 1.0) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.in_flight = 0

    def reserve(self, size: int) -> Reservation:
        """Reserve ``size`` wire bytes here and with every gate; raises ``OverloadedError`` if any refuses."""
        return reserve(self, size)


class Reservation:
    """Bytes held for one request; ``grow`` adds more (an HTTP body larger once inflated), ``release`` ends it."""

    __slots__ = ("_budget", "_held")

    def __init__(self, budget: Budget) -> None:
        self._budget = budget
        self._held: list[tuple[Gate | None, int]] = []

    def grow(self, size: int) -> None:
        if size <= 0:
            return
        budget = self._budget
        if budget.limit and budget.in_flight + size > budget.limit and budget.in_flight > 0:
            # A single request larger than the cap is still let in when nothing else is in flight: its size is
            # bounded by the server's own request size limit.
            raise OverloadedError(f"too many bytes in flight on this receiver (max_in_flight_size_mib: "
                                  f"{budget.limit // (1024 * 1024)} MiB); retry later", retry_after=budget.retry_after)
        decoded = size * EXPANSION
        taken: list[Gate] = []
        for gate in _gates:
            refusal = gate.try_admit(decoded)
            if refusal is not None:
                for done in taken:
                    done.release(decoded)
                raise refusal
            taken.append(gate)
        budget.in_flight += size
        self._held.append((None, size))
        self._held.extend((gate, decoded) for gate in taken)

    def release(self) -> None:
        held, self._held = self._held, []
        for gate, size in held:
            if gate is None:
                self._budget.in_flight -= size
            else:
                gate.release(size)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def reserve(budget: Budget, size: int) -> Reservation:
    reservation = Reservation(budget)
    reservation.grow(size)
    return reservation
