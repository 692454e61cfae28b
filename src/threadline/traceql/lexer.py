"""TraceQL lexer: text -> tokens with 1-based line and column.

Follows Tempo's scanner: whitespace and Go comments (``//``, ``/* */``) are skipped; operators
are matched greedily (``!>>``, ``&<<``); a number immediately followed by unit letters is a
duration (Prometheus syntax first: ``1h30m``, ``2d``, ``1y``; then Go syntax: ``1.5s``,
``500us``); after a scope prefix (``.``, ``span.``, ``resource.``, ``event.``, ``link.``,
``instrumentation.``, ``parent.``) the attribute name runs until whitespace or one of
``{ } ( ) = ~ ! < > & | ^ ,`` and may contain double-quoted segments (escapes ``\\"`` and
``\\\\`` only). ``trace:``, ``span:``, ``event:``, ``link:``, ``instrumentation:`` are scope
tokens for scoped intrinsics.

Lexing errors do not raise: the token list ends with an ERROR token (its ``value`` is the
message) so that the parser reports errors in source order.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from threadline.traceql.ast import Scope

MAX_INT = 2**63 - 1
MIN_INT = -(2**63)


class TokenKind(enum.Enum):
    EOF = "end of query"
    ERROR = "error"
    STRING = "string"
    INT = "integer"
    FLOAT = "float"
    DURATION = "duration"
    IDENT = "identifier"
    KEYWORD = "keyword"
    ATTRIBUTE = "attribute"  # value: (Scope, parent: bool, name)
    SCOPE = "scope"  # "span:" etc.; value: "span"
    OP = "operator"


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str  # the source text of the token
    value: object
    line: int
    column: int
    offset: int
    end: int

    def describe(self) -> str:
        """How the token is named in error messages."""
        if self.kind is TokenKind.EOF:
            return "end of query"
        if self.kind is TokenKind.STRING:
            return f"string {self.text}"
        return f'"{self.text}"'


KEYWORDS = frozenset(
    [
        "true",
        "false",
        "nil",
        "ok",
        "error",
        "unset",
        "unspecified",
        "internal",
        "server",
        "client",
        "producer",
        "consumer",
        "duration",
        "childCount",
        "name",
        "status",
        "statusMessage",
        "kind",
        "rootName",
        "rootServiceName",
        "rootService",
        "traceDuration",
        "nestedSetLeft",
        "nestedSetRight",
        "nestedSetParent",
        "id",
        "traceID",
        "spanID",
        "parentID",
        "timeSinceStart",
        "version",
        "parent",
        "count",
        "avg",
        "max",
        "min",
        "sum",
        "by",
        "coalesce",
        "select",
        "rate",
        "count_over_time",
        "min_over_time",
        "max_over_time",
        "avg_over_time",
        "sum_over_time",
        "quantile_over_time",
        "histogram_over_time",
        "compare",
        "topk",
        "bottomk",
        "with",
    ]
)

_DOT_SCOPES = {
    "span": Scope.SPAN,
    "resource": Scope.RESOURCE,
    "event": Scope.EVENT,
    "link": Scope.LINK,
    "instrumentation": Scope.INSTRUMENTATION,
    "parent": Scope.NONE,
}
_COLON_SCOPES = frozenset({"trace", "span", "event", "link", "instrumentation"})

OPERATORS = frozenset(
    [
        "{",
        "}",
        "(",
        ")",
        ",",
        "=",
        "!=",
        "=~",
        "!~",
        ">",
        ">=",
        "<",
        "<=",
        "+",
        "-",
        "/",
        "%",
        "*",
        "^",
        "&&",
        "||",
        "!",
        "|",
        ">>",
        "<<",
        "~",
        "!>",
        "!<",
        "!>>",
        "!<<",
        "&~",
        "&>",
        "&<",
        "&>>",
        "&<<",
    ]
)
_OPERATOR_STARTS = frozenset(op[0] for op in OPERATORS)
_ATTRIBUTE_STOPS = frozenset("{}()=~!<>&|^,")
_WHITESPACE = frozenset(" \t\n\r")
_DURATION_RUNES = frozenset("0123456789nsumhµdwy.")


def is_attribute_rune(c: str) -> bool:
    """Characters that may appear unquoted in an attribute name."""
    return not c.isspace() and c not in _ATTRIBUTE_STOPS


# ---------------------------------------------------------------------------- durations

_NS = 1
_US = 1_000
_MS = 1_000_000
_S = 1_000_000_000
_M = 60 * _S
_H = 60 * _M
_D = 24 * _H
_PROM_UNITS = (("y", 365 * _D), ("w", 7 * _D), ("d", _D), ("h", _H), ("m", _M), ("s", _S))
_PROM_ORDER = {"y": 0, "w": 1, "d": 2, "h": 3, "m": 4, "s": 5, "ms": 6}
_GO_UNITS = {"ns": _NS, "us": _US, "µs": _US, "μs": _US, "ms": _MS, "s": _S, "m": _M, "h": _H}


def _parse_prometheus_duration(s: str) -> int | None:
    """Prometheus ``model.ParseDuration``: integer amounts, units y w d h m s ms in order."""
    if s == "0":
        return 0
    i, n, last, total = 0, len(s), -1, 0
    if n == 0:
        return None
    while i < n:
        j = i
        while j < n and "0" <= s[j] <= "9":
            j += 1
        if j == i:
            return None
        amount = int(s[i:j])
        if s.startswith("ms", j):
            unit, size = "ms", _MS
        elif j < n and s[j] in "ywdhms":
            unit = s[j]
            size = dict(_PROM_UNITS)[unit]
        else:
            return None
        if _PROM_ORDER[unit] <= last:
            return None
        last = _PROM_ORDER[unit]
        total += amount * size
        i = j + len(unit)
    return total


def _parse_go_duration(s: str) -> int | None:
    """Go ``time.ParseDuration`` (unsigned): ``1.5h``, ``300ms``, ``2h45m``, ``.5s``."""
    if s == "0":
        return 0
    i, n = 0, len(s)
    if n == 0:
        return None
    total = Fraction(0)
    while i < n:
        j = i
        while j < n and "0" <= s[j] <= "9":
            j += 1
        whole = s[i:j]
        frac = ""
        if j < n and s[j] == ".":
            k = j + 1
            while k < n and "0" <= s[k] <= "9":
                k += 1
            frac = s[j + 1 : k]
            j = k
        if not whole and not frac:
            return None
        k = j
        while k < n and s[k] != "." and not ("0" <= s[k] <= "9"):
            k += 1
        size = _GO_UNITS.get(s[j:k])
        if size is None:
            return None
        amount = Fraction(int(whole or "0")) + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)
        total += amount * size
        i = k
    return int(total)


def parse_duration(s: str) -> int | None:
    """Nanoseconds of a TraceQL duration literal (``"1h30m"``, ``"1.5s"``), or None."""
    ns = _parse_prometheus_duration(s)
    if ns is None:
        ns = _parse_go_duration(s)
    return ns


# ---------------------------------------------------------------------------- strings

_SIMPLE_ESCAPES = {
    "a": 7,
    "b": 8,
    "f": 12,
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "\\": 92,
    '"': 34,
}


def unquote_go(body: str) -> str:
    """Go ``strconv.Unquote`` of the inside of a double-quoted string. Raises ValueError."""
    if "\\" not in body:
        return body
    out = bytearray()
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogatepass")
            i += 1
            continue
        e = body[i + 1] if i + 1 < n else ""
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
            i += 2
        elif e and e in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or any(d not in "01234567" for d in digits):
                raise ValueError("invalid octal escape")
            value = int(digits, 8)
            if value > 255:
                raise ValueError("octal escape value > 255")
            out.append(value)
            i += 4
        elif e in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError(f"invalid \\{e} escape")
            value = int(digits, 16)
            if e == "x":
                out.append(value)
            else:
                if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                    raise ValueError(f"escape \\{e}{digits} is not a valid character")
                out += chr(value).encode("utf-8")
            i += 2 + width
        else:
            raise ValueError(f"unknown escape sequence \\{e}")
    return out.decode("utf-8", "replace")


# ---------------------------------------------------------------------------- lexer


class LexerBase:
    """What the TraceQL and LogQL lexers share: the text with its line starts, positions, the
    tokenizing loop and token making. Subclasses name their ``TOKEN`` class and ``KINDS`` enum
    (with ``EOF`` and ``ERROR``) and implement ``_next(offset)``."""

    TOKEN: Any = None
    KINDS: Any = None

    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self._line_starts = [0]
        for i, c in enumerate(text):
            if c == "\n":
                self._line_starts.append(i + 1)

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def tokenize(self) -> list[Any]:
        """All tokens, ending with EOF or (on a lexing error) ERROR."""
        tokens: list[Any] = []
        i = 0
        while True:
            tok = self._next(i)
            tokens.append(tok)
            if tok.kind in (self.KINDS.EOF, self.KINDS.ERROR):
                return tokens
            i = tok.end

    def _next(self, i: int) -> Any:
        raise NotImplementedError

    def _token(self, kind: Any, start: int, end: int, value: object = None) -> Any:
        line, column = self.position(start)
        return self.TOKEN(kind, self.text[start:end], value, line, column, start, end)

    def _error(self, start: int, message: str) -> Any:
        line, column = self.position(start)
        end = min(start + 1, self.n)
        return self.TOKEN(self.KINDS.ERROR, self.text[start:end], message, line, column, start, end)


class Lexer(LexerBase):
    TOKEN = Token
    KINDS = TokenKind

    # -- helpers

    def _skip(self, i: int) -> int | Token:
        text, n = self.text, self.n
        while i < n:
            c = text[i]
            if c in _WHITESPACE:
                i += 1
            elif text.startswith("//", i):
                j = text.find("\n", i)
                i = n if j < 0 else j
            elif text.startswith("/*", i):
                j = text.find("*/", i + 2)
                if j < 0:
                    return self._error(i, "comment not terminated")
                i = j + 2
            else:
                break
        return i

    def _next(self, i: int) -> Token:
        skipped = self._skip(i)
        if isinstance(skipped, Token):
            return skipped
        i = skipped
        text, n = self.text, self.n
        if i >= n:
            return self._token(TokenKind.EOF, n, n)
        c = text[i]
        if c == '"':
            return self._string(i)
        if c == "`":
            j = text.find("`", i + 1)
            if j < 0:
                return self._error(i, "string literal not terminated")
            return self._token(TokenKind.STRING, i, j + 1, text[i + 1 : j].replace("\r", ""))
        if "0" <= c <= "9" or (c == "." and i + 1 < n and "0" <= text[i + 1] <= "9"):
            return self._number(i)
        if c == ".":
            return self._attribute(i, i + 1, Scope.NONE, parent=False)
        if c == "_" or c.isalpha():
            j = i + 1
            while j < n and (text[j] == "_" or text[j].isalpha() or text[j].isdecimal()):
                j += 1
            word = text[i:j]
            nxt = text[j] if j < n else ""
            if nxt == "." and word in _DOT_SCOPES:
                if word == "parent":
                    for scope in (Scope.SPAN, Scope.RESOURCE):
                        prefix = scope.value + "."
                        if text.startswith(prefix, j + 1):
                            return self._attribute(i, j + 1 + len(prefix), scope, parent=True)
                    return self._attribute(i, j + 1, Scope.NONE, parent=True)
                return self._attribute(i, j + 1, _DOT_SCOPES[word], parent=False)
            if nxt == ":" and word in _COLON_SCOPES:
                return self._token(TokenKind.SCOPE, i, j + 1, word)
            kind = TokenKind.KEYWORD if word in KEYWORDS else TokenKind.IDENT
            return self._token(kind, i, j, word)
        if c in _OPERATOR_STARTS:
            j = i + 1
            while j < n and text[i : j + 1] in OPERATORS:
                j += 1
            op = text[i:j]
            if op in OPERATORS:
                return self._token(TokenKind.OP, i, j, op)
        return self._error(i, f"unexpected character {c!r}")

    def _string(self, i: int) -> Token:
        text, n = self.text, self.n
        j = i + 1
        while True:
            if j >= n or text[j] == "\n":
                return self._error(i, "string literal not terminated")
            if text[j] == "\\":
                j += 2
                continue
            if text[j] == '"':
                break
            j += 1
        try:
            value = unquote_go(text[i + 1 : j])
        except ValueError as e:
            return self._error(i, f"invalid string literal: {e}")
        return self._token(TokenKind.STRING, i, j + 1, value)

    def _number(self, i: int) -> Token:
        text, n = self.text, self.n
        j = i
        while j < n and "0" <= text[j] <= "9":
            j += 1
        is_float = False
        if j < n and text[j] == ".":
            is_float = True
            j += 1
            while j < n and "0" <= text[j] <= "9":
                j += 1
        if j < n and text[j] in "eE":
            k = j + 1
            if k < n and text[k] in "+-":
                k += 1
            if not (k < n and "0" <= text[k] <= "9"):
                return self._error(i, "exponent has no digits")
            while k < n and "0" <= text[k] <= "9":
                k += 1
            is_float = True
            j = k
        # a duration is the number followed directly by unit letters, digits and dots
        k = j
        while k < n and text[k] in _DURATION_RUNES:
            k += 1
        if k > j:
            ns = parse_duration(text[i:k])
            if ns is not None:
                if ns > MAX_INT:
                    return self._error(i, f"duration {text[i:k]} is out of range")
                return self._token(TokenKind.DURATION, i, k, ns)
        literal = text[i:j]
        if is_float:
            value = float(literal)
            if value == float("inf"):
                return self._error(i, f"number {literal} is out of range")
            return self._token(TokenKind.FLOAT, i, j, value)
        number = int(literal)
        if number > MAX_INT:
            return self._error(i, f"integer {literal} is out of range (largest is {MAX_INT})")
        return self._token(TokenKind.INT, i, j, number)

    def _attribute(self, start: int, i: int, scope: Scope, *, parent: bool) -> Token:
        """Attribute name from ``i`` (just after the scope prefix)."""
        text, n = self.text, self.n
        parts: list[str] = []
        j = i
        while j < n:
            c = text[j]
            if c == '"':
                k = j + 1
                segment: list[str] = []
                while True:
                    if k >= n:
                        return self._error(j, 'unterminated quoted attribute name, expected "')
                    ch = text[k]
                    if ch == '"':
                        break
                    if ch == "\\":
                        esc = text[k + 1] if k + 1 < n else ""
                        if esc not in ('"', "\\"):
                            return self._error(
                                k, 'invalid escape in quoted attribute name (only \\" and \\\\)'
                            )
                        segment.append(esc)
                        k += 2
                        continue
                    segment.append(ch)
                    k += 1
                parts.append("".join(segment))
                j = k + 1
            elif is_attribute_rune(c):
                parts.append(c)
                j += 1
            else:
                break
        if j == i:
            prefix = text[start:i]
            return self._error(start, f'expected an attribute name after "{prefix}"')
        return self._token(TokenKind.ATTRIBUTE, start, j, (scope, parent, "".join(parts)))


def tokenize(text: str) -> list[Token]:
    return Lexer(text).tokenize()
