"""``python -m parsec_fast.server``: run the local server from a shell (the ``parsec-fast serve``
CLI calls :func:`parsec_fast.server.serve_forever` the same way)."""
from __future__ import annotations

import argparse

from .app import serve_forever
from .config import ServerConfig
from .faults import parse_fault_spec


def config_from_args(argv: list[str] | None = None) -> ServerConfig:
    """Parse command-line options into a :class:`ServerConfig`."""
    p = argparse.ArgumentParser(prog="python -m parsec_fast.server", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--markets", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=float, default=200.0, help="events/s over all markets; 0 = max")
    p.add_argument("--tier", default="pro", choices=("free", "pro", "scale"))
    p.add_argument("--heartbeat", type=float, default=5.0, help="heartbeat interval, s")
    p.add_argument("--stale-after-ms", type=int, default=5000)
    p.add_argument("--separate-activity-seq", action="store_true")
    p.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help='e.g. "gap@2.0", "stall:3/kalshi:KXSIM-0000@5", "random@10" (repeatable)')
    a = p.parse_args(argv)
    for spec in a.fault:
        try:
            parse_fault_spec(spec)
        except ValueError as exc:
            p.error(str(exc))
    return ServerConfig(host=a.host, port=a.port, markets=a.markets, seed=a.seed, rate=a.rate or None,
                        tier=a.tier, heartbeat_interval=a.heartbeat, stale_after_ms=a.stale_after_ms,
                        separate_activity_seq=a.separate_activity_seq, faults=a.fault)


def main(argv: list[str] | None = None) -> None:
    """Run the server until Ctrl-C."""
    serve_forever(config_from_args(argv))


if __name__ == "__main__":
    main()
