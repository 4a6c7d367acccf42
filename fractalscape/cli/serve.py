"""``fractalscape serve``: the browser dashboard, after checking that it can listen where asked."""

from __future__ import annotations

import click

from fractalscape.cli import main
from fractalscape.errors import ConfigError


@main.command("serve")
@click.argument("target")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Interface to listen on (default: this machine only).")
@click.option("--port", type=int, default=5006, show_default=True, help="Port; 0 picks a free one.")
@click.option("--show/--no-show", default=False, help="Open a browser tab.")
def serve_command(target, address, port, show):
    """Explore TARGET (a config, a preset, or a STORE written by `fractalscape map`) in the browser."""
    _check_listen(address, port)
    try:
        from fractalscape.dashboard import serve
    except ImportError as err:
        raise ConfigError(f"the dashboard needs holoviews and panel: pip install 'fractalscape[dashboard]' ({err})")
    server = serve(target, address=address, port=port, show=show)
    try:
        server.join()
    except KeyboardInterrupt:
        server.stop()


def _check_listen(address: str, port: int) -> None:
    """Refuse, before the server starts, an --address this machine cannot listen on or a --port it cannot take.

    Binds each address ``address`` resolves to as the server will (with
    ``SO_REUSEADDR``, IPv6 sockets IPv6 only) and lets go: a port another
    server holds is named here, instead of the server finding someone
    listening there and printing a URL that is not its own.
    """
    import errno
    import socket

    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be 0 to 65535 (0 picks a free one), got {port}")
    try:
        found = socket.getaddrinfo(address or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        raise ConfigError(f"--address {address!r} is not a host name or address of this machine "
                          f"({getattr(err, 'strerror', None) or err}); pass e.g. 127.0.0.1 or 0.0.0.0") from None
    for family, kind, proto, _, sockaddr in found:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(sockaddr)
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    raise ConfigError(f"port {port} on {address} is already in use (another dashboard or server?); "
                                      "stop it, pass another --port, or --port 0 for a free one") from None
                if err.errno == errno.EACCES:
                    raise ConfigError(f"port {port} on {address} needs privileges to listen on; pass a --port above "
                                      "1023, or --port 0 for a free one") from None
                raise ConfigError(f"cannot listen on {address} port {port} ({err.strerror or err}); pass an "
                                  "--address of this machine (127.0.0.1, 0.0.0.0) or another --port") from None
