"""The connect step every live command shares: say what is happening, fail in one line.

:func:`open_client` prints what it is doing on stderr ("connecting to URL ...", "subscribing N
markets ..."), so the screen is never blank while a slow server is waited for, and turns every
failure into a :class:`~parsec_fast.cli.exits.CliError`: a typed
:class:`~parsec_fast.errors.ParsecConnectionError` (DNS, refused, TLS, handshake timeout, a
server that accepted TCP but never answered, auth timeout) exits 3 with its phase, URL and
cause; a refused credential exits 4.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..codes import AUTH_TIMEOUT_S
from ..errors import AuthenticationError, ParsecConnectionError, SubscriptionError
from .exits import EXIT_AUTH, EXIT_CONNECT, EXIT_ERROR, EXIT_USAGE, CliError

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..client import Client
    from ..client.config import ClientOptions

__all__ = ["open_client", "say", "connect_error", "SUBSCRIBE_TIMEOUT_S"]

#: How long the first snapshots of the subscribed markets are waited for.
SUBSCRIBE_TIMEOUT_S = 30.0


def say(text: str) -> None:
    """A progress line on stderr (stdout stays for the view, the summary and JSON)."""
    print(f"parsec-fast: {text}", file=sys.stderr, flush=True)


def connect_error(exc: ParsecConnectionError | AuthenticationError) -> CliError:
    """The one line and exit code of a failed connection."""
    if isinstance(exc, AuthenticationError):
        return CliError(f"authentication failed: {exc.message} (code {exc.code})", EXIT_AUTH)
    return CliError(f"cannot connect (phase {exc.phase}): {exc}", EXIT_CONNECT)


async def open_client(url: str, markets: Sequence[tuple[str, str]], *, depth: int | None,
                      api_key: str | None = None, terminal_token: str | None = None,
                      **options: Unpack[ClientOptions]) -> Client:
    """Create a Client (``options``: :class:`~parsec_fast.client.config.ClientConfig` fields),
    connect (one attempt), subscribe ``markets`` and wait for their first snapshots;
    reconnecting is on from then on. Closes the client on any failure."""
    from ..client import Client

    connect_timeout = options.setdefault("connect_timeout", 10.0)
    # The whole start: each connection step, then authentication, and a margin.
    options.setdefault("open_timeout", connect_timeout + AUTH_TIMEOUT_S + 5)
    try:
        client = Client(url, api_key=api_key, terminal_token=terminal_token, **options)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    say(f"connecting to {client.url} (timeout {connect_timeout:g} s a step) ...")
    try:
        await client.start()
    except (AuthenticationError, ParsecConnectionError) as exc:
        raise connect_error(exc) from None
    except (OSError, TimeoutError) as exc:  # not typed by the client: still one line
        raise CliError(f"cannot connect to {client.url}: {type(exc).__name__}: {exc}",
                       EXIT_CONNECT) from None
    try:
        if markets:
            say(f"connected; subscribing {len(markets)} book(s) ...")
            await _subscribe(client, markets, depth)
    except BaseException:
        await client.close()
        raise
    return client


async def _subscribe(client: Client, markets: Sequence[tuple[str, str]],
                     depth: int | None) -> None:
    try:
        await client.subscribe([{"parsec_id": p, "outcome": o} for p, o in markets],
                               depth=depth, timeout=SUBSCRIBE_TIMEOUT_S)
    except SubscriptionError as exc:
        refused = ", ".join(f"{p}/{o}: {m} ({c})" for (p, o), (c, m) in exc.failures.items())
        if len(exc.failures) >= len(markets):
            raise CliError(f"every market was refused: {refused}", EXIT_ERROR) from None
        say(f"warning: refused: {refused}")
    except TimeoutError:
        say(f"warning: some snapshots did not arrive within {SUBSCRIBE_TIMEOUT_S:g} s; "
            "showing what there is")
