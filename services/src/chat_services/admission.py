"""Connection admission: who gets a connection, so that health checks always get one.

Connections up to ``--max-connections`` carry any call. Past that, a small reserve
(``--health-connections``) is still admitted for health checks only: any other call on
those gets UNAVAILABLE, and they close after a short idle time, so a flood of idle
connections cannot lock out the probes that would tell an operator about it. No address
may hold more than ``--max-connections-per-address`` connections of either kind.

Why a reserve on the serving port rather than health on a port of its own: the probes
(Kubernetes' ``grpc:`` probes, load balancers, ``chat-services health``) already ask the
serving port and need no new port opened or configured, and an answer from that port
also proves it still accepts connections.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field

HEALTH_PREFIX = "/grpc.health.v1.Health/"


class Seat(enum.Enum):
    """What an admitted connection may carry."""

    CALLS = "calls"  # any call
    HEALTH = "health"  # health checks only (the reserve)


@dataclass
class ConnectionAdmission:
    """The server's connection counts: the pool for calls, the health reserve, and per address."""

    max_connections: int
    health_connections: int
    max_per_address: int
    calls: int = 0
    health: int = 0
    by_address: Counter[str] = field(default_factory=Counter)

    def admit(self, address: str) -> Seat | str:
        """Take a seat for a new connection from ``address``; a reason string when it is refused."""
        if self.by_address[address] >= self.max_per_address:
            return f"{self.max_per_address} connections from this address already"
        if self.calls < self.max_connections:
            seat = Seat.CALLS
            self.calls += 1
        elif self.health < self.health_connections:
            seat = Seat.HEALTH
            self.health += 1
        else:
            return f"{self.max_connections} connections and {self.health_connections} for health already"
        self.by_address[address] += 1
        return seat

    def release(self, seat: Seat, address: str) -> None:
        """Give back the seat an admitted connection took."""
        if seat is Seat.CALLS:
            self.calls -= 1
        else:
            self.health -= 1
        self.by_address[address] -= 1
        if not self.by_address[address]:
            del self.by_address[address]

    @property
    def open_connections(self) -> int:
        """Connections admitted and not yet closed, of both kinds."""
        return self.calls + self.health
