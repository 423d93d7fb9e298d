"""Loaded by Python at start-up (it is on PYTHONPATH): any non-loopback connect fails the run.

Used by the dry-run tests to prove the launcher makes no network call: a connect attempt raises,
and prints a marker the tests look for even if the launcher were to swallow the exception.
"""

import socket
import sys

_connect = socket.socket.connect
_LOOPBACK = ("127.", "::1", "localhost")


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else str(address)
    if isinstance(host, str) and host.startswith(_LOOPBACK) or self.family == socket.AF_UNIX:
        return _connect(self, address)
    print(f"network access attempted: {address!r}", file=sys.stderr, flush=True)
    raise OSError(f"network access attempted: {address!r}")


socket.socket.connect = _guarded_connect
socket.socket.connect_ex = lambda self, address: _guarded_connect(self, address) or 0
