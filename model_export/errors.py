"""The one error type the CLI turns into a clear message and a non-zero exit (no stack trace)."""

from __future__ import annotations


class ExportError(Exception):
    """Bad input or a broken artifact; the message says what is wrong and what to do."""
