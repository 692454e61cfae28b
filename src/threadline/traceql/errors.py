"""Errors raised by the TraceQL front end.

All three carry the 1-based ``line`` and ``column`` of the offending text and a bare
``message``; ``str(error)`` is the message prefixed with its kind and position, ready to be
sent back to the user (Tempo answers all of them with HTTP 400).
"""

from __future__ import annotations


class TraceQLError(Exception):
    """Base class: a query that cannot be run. ``line``/``column`` are 1-based."""

    kind = "error"

    def __init__(self, message: str, line: int, column: int) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(f"{self.kind} at line {line}, column {column}: {message}")


class TraceQLSyntaxError(TraceQLError):
    """The text is not TraceQL.

    ``found`` describes what was there (``'"}"'``, ``"end of query"``); ``expected`` says what
    the parser wanted instead, when that is a simple list (otherwise ``None``).
    """

    kind = "syntax error"

    def __init__(
        self,
        message: str,
        line: int,
        column: int,
        *,
        found: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.found = found
        self.expected = expected
        super().__init__(message, line, column)


class TraceQLValidationError(TraceQLError):
    """The query parses but is meaningless: type errors, invalid regexes, bad arguments."""

    kind = "invalid query"


class TraceQLUnsupportedError(TraceQLError):
    """The query parses but uses something Tempo refuses as not (yet) supported."""

    kind = "unsupported query"
