"""Helpers the Python benches share (bench/*.py import it from their own directory)."""
import socket


def free_ports(n):
    """Returns n TCP ports free on loopback right now (bound together, so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports
