"""Synthetic ``wallet_activity`` snapshots for address subscriptions."""
from __future__ import annotations

import random
import time
from typing import Any

from .simulator import Simulator

__all__ = ["WalletFeed"]


class WalletFeed:
    """Builds ``wallet_activity`` frames: a few positions, orders and trades on the simulated
    markets of the wallet's exchange, seeded by (server seed, exchange, address, counter)."""

    def __init__(self, simulator: Simulator, seed: int) -> None:
        self.simulator = simulator
        self.seed = seed
        self._counter = 0

    def frame(self, addr: tuple[str, str]) -> dict[str, Any]:
        """The next ``wallet_activity`` snapshot of ``addr`` = (exchange, address)."""
        exchange, address = addr
        self._counter += 1
        rng = random.Random(f"{self.seed}:{exchange}:{address}:{self._counter}")
        markets = [st.spec for st in self.simulator.markets.values()]
        specs = [s for s in markets if s.exchange == exchange] or markets
        now_ms = int(time.time() * 1000)

        def pick() -> tuple[str, str]:
            spec = rng.choice(specs)
            return spec.parsec_id, rng.choice(spec.outcomes)

        positions = [dict(zip(("parsec_id", "outcome"), pick()), size=float(rng.randint(1, 500)),
                          avg_price=round(rng.uniform(0.05, 0.95), 2)) for _ in range(rng.randint(0, 3))]
        orders = [dict(zip(("parsec_id", "outcome"), pick()), order_id=f"ord_{rng.randrange(10**8)}",
                       side=rng.choice(("buy", "sell")), price=round(rng.uniform(0.05, 0.95), 2),
                       size=float(rng.randint(1, 200))) for _ in range(rng.randint(0, 3))]
        trades = [dict(zip(("parsec_id", "outcome"), pick()), trade_id=f"wt_{rng.randrange(10**8)}",
                       side=rng.choice(("buy", "sell")), price=round(rng.uniform(0.05, 0.95), 2),
                       size=float(rng.randint(1, 200)), ts_ms=now_ms - rng.randint(0, 10**6))
                  for _ in range(rng.randint(0, 3))]
        return {"type": "wallet_activity", "exchange": exchange, "address": address,
                "data": {"positions": positions, "orders": orders, "trades": trades},
                "ts_ms": now_ms}
