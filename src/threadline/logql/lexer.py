"""LogQL lexer: text -> tokens with 1-based line and column, the way Loki's scanner cuts them.

Owns tokenisation only. As in Loki (``pkg/logql/syntax/lex.go`` on Go's ``text/scanner``):

* whitespace, ``# ...`` to the end of the line, and Go comments (``//``, ``/* */``) are skipped;
* words are keywords case-insensitively (``by``, ``json``, ``or``, ``unwrap``, ...); function
  names (``rate``, ``sum``, ``duration`` ...) are keywords only when an opening parenthesis
  follows, possibly after ``by (...)``/``without (...)``, and plain identifiers otherwise;
* a number directly followed by duration units is a DURATION (Prometheus syntax first, then
  Go's: ``5m``, ``1h30m``, ``1.5s``; ``-5m`` too), else by byte units a BYTES (``20MB``,
  ``1KiB``), else a NUMBER whose text is kept (Loki converts it where it is used);
* ``[5m]`` is one RANGE token (Prometheus duration syntax only);
* ``--strict`` / ``--keep-empty`` are FLAG tokens;
* double-quoted strings use Go escapes, backquoted ones are raw;
* any other character is an IDENTIFIER-like ``OTHER`` token (Loki reports it as
  ``unexpected IDENTIFIER``).

Lexing errors do not raise: the token list ends with an ERROR token (``value`` is Loki's
message) so that the parser reports errors in source order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# Loki's duration literals are Prometheus' then Go's syntax, exactly as TraceQL's; its strings
# are Go strings: both helpers are shared with the TraceQL lexer.
from threadline.traceql.lexer import LexerBase, unquote_go
from threadline.traceql.lexer import parse_duration as parse_unsigned_duration

MAX_DURATION = 2**63 - 1
MAX_BYTES = 2**64 - 1


class TokenKind(enum.Enum):
    EOF = "$end"
    ERROR = "error"
    STRING = "STRING"
    NUMBER = "NUMBER"
    DURATION = "DURATION"
    BYTES = "BYTES"
    RANGE = "RANGE"
    FLAG = "FUNCTION_FLAG"
    IDENT = "IDENTIFIER"
    OTHER = "IDENTIFIER"  # a character Loki has no token for
    KEYWORD = "keyword"  # value: the lower-cased word
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
        """How Loki names the token in ``syntax error: unexpected ...``."""
        if self.kind is TokenKind.KEYWORD:
            word = str(self.value)
            return FUNCTION_KEYWORDS.get(word, word)
        if self.kind is TokenKind.OP:
            return self.text
        return self.kind.value

    def is_op(self, op: str) -> bool:
        return self.kind is TokenKind.OP and self.text == op

    def is_keyword(self, word: str) -> bool:
        return self.kind is TokenKind.KEYWORD and self.value == word


# words that are keywords wherever they appear (Loki's ``tokens`` table)
KEYWORDS = frozenset(
    [
        "by",
        "without",
        "bool",
        "offset",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "or",
        "and",
        "unless",
        "json",
        "regexp",
        "logfmt",
        "unpack",
        "pattern",
        "label_format",
        "line_format",
        "ip",
        "decolorize",
        "drop",
        "keep",
        "unwrap",
        "label_replace",
    ]
)

# words that are keywords only before "(" (or "by (" / "without ("), with Loki's token names
FUNCTION_KEYWORDS: dict[str, str] = {
    "rate": "RATE",
    "rate_counter": "RATE_COUNTER",
    "count_over_time": "COUNT_OVER_TIME",
    "bytes_rate": "BYTES_RATE",
    "bytes_over_time": "BYTES_OVER_TIME",
    "avg_over_time": "AVG_OVER_TIME",
    "sum_over_time": "SUM_OVER_TIME",
    "min_over_time": "MIN_OVER_TIME",
    "max_over_time": "MAX_OVER_TIME",
    "stdvar_over_time": "STDVAR_OVER_TIME",
    "stddev_over_time": "STDDEV_OVER_TIME",
    "quantile_over_time": "QUANTILE_OVER_TIME",
    "first_over_time": "FIRST_OVER_TIME",
    "last_over_time": "LAST_OVER_TIME",
    "absent_over_time": "ABSENT_OVER_TIME",
    "vector": "VECTOR",
    "sum": "SUM",
    "avg": "AVG",
    "max": "MAX",
    "min": "MIN",
    "count": "COUNT",
    "stddev": "STDDEV",
    "stdvar": "STDVAR",
    "bottomk": "BOTTOMK",
    "topk": "TOPK",
    "sort": "SORT",
    "sort_desc": "SORT_DESC",
    "approx_topk": "APPROX_TOPK",
    "bytes": "BYTES_CONV",
    "duration": "DURATION_CONV",
    "duration_seconds": "DURATION_SECONDS_CONV",
}
_ALWAYS_KEYWORDS = frozenset({"ip", "label_replace"})  # in both of Loki's tables

OPERATORS = frozenset(
    [
        ",",
        ".",
        "{",
        "}",
        "(",
        ")",
        "]",
        "=",
        "!=",
        "=~",
        "!~",
        "!>",
        "|=",
        "|~",
        "|>",
        "|",
        "+",
        "-",
        "*",
        "/",
        "%",
        "^",
        "==",
        ">",
        ">=",
        "<",
        "<=",
    ]
)
PARSER_FLAGS = frozenset({"--strict", "--keep-empty"})

_WHITESPACE = frozenset(" \t\n\r")
_DURATION_RUNES = frozenset("0123456789nuµmshdwy.")
_BYTES_RUNES = frozenset("0123456789BikKMGTP.")
_BYTE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "ki": 1024,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gi": 1024**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ti": 1024**4,
    "tib": 1024**4,
    "p": 1000**5,
    "pb": 1000**5,
    "pi": 1024**5,
    "pib": 1024**5,
}
_PROM_UNITS: dict[str, tuple[int, int]] = {  # unit: (order, nanoseconds)
    "y": (1, 365 * 24 * 3600 * 10**9),
    "w": (2, 7 * 24 * 3600 * 10**9),
    "d": (3, 24 * 3600 * 10**9),
    "h": (4, 3600 * 10**9),
    "m": (5, 60 * 10**9),
    "s": (6, 10**9),
    "ms": (7, 10**6),
}


def is_ident_start(c: str) -> bool:
    return c == "_" or "a" <= c <= "z" or "A" <= c <= "Z"


def is_ident_char(c: str) -> bool:
    return is_ident_start(c) or "0" <= c <= "9"


def parse_duration(text: str) -> int | None:
    """Nanoseconds of a LogQL duration literal (``5m``, ``1h30m``, ``1.5s``, ``-5m``), or None."""
    sign = 1
    body = text
    if body[:1] in ("-", "+"):  # Go's time.ParseDuration takes a sign, Prometheus' does not
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
        if not body:
            return None
    ns = parse_unsigned_duration(body)
    if ns is None or ns > MAX_DURATION:
        return None
    return sign * ns


def parse_range(text: str) -> int | str:
    """Nanoseconds of the inside of ``[...]`` (Prometheus syntax), or Loki's error message."""
    if text == "0":
        return 0
    if text == "":
        return "empty duration string"
    invalid = f'not a valid duration string: "{text}"'
    i, n, last, total = 0, len(text), 0, 0
    while i < n:
        j = i
        while j < n and "0" <= text[j] <= "9":
            j += 1
        if j == i:
            return invalid
        amount = int(text[i:j])
        k = j
        while k < n and not ("0" <= text[k] <= "9"):
            k += 1
        if k == j:
            return invalid
        unit = text[j:k]
        if unit not in _PROM_UNITS:
            return f'unknown unit "{unit}" in duration "{text}"'
        order, size = _PROM_UNITS[unit]
        if order <= last:
            return invalid
        last = order
        total += amount * size
        if total > MAX_DURATION:
            return "duration out of range"
        i = k
    return total


def parse_bytes(text: str) -> int | None:
    """Bytes of a size literal (``20MB``, ``1.5KiB``), as go-humanize's ParseBytes, or None."""
    i = 0
    while i < len(text) and ("0" <= text[i] <= "9" or text[i] == "."):
        i += 1
    unit = text[i:].strip().lower()
    if unit not in _BYTE_UNITS:
        return None
    try:
        number = float(text[:i])
    except ValueError:
        return None
    size = number * _BYTE_UNITS[unit]
    if size >= MAX_BYTES:
        return None
    return int(size)


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
            elif c == "#" or text.startswith("//", i):
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

    def _skip_space(self, i: int) -> int:
        while i < self.n and self.text[i] in _WHITESPACE:
            i += 1
        return i

    def _is_function(self, i: int) -> bool:
        """Loki's isFunction: "(" follows, or "by"/"without" then "(" (only spaces between)."""
        text = self.text
        i = self._skip_space(i)
        if text.startswith("(", i):
            return True
        for word in ("by", "without"):
            if text[i : i + len(word)].lower() == word:
                j = self._skip_space(i + len(word))
                return text.startswith("(", j)
        return False

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
                return self._error(i, "literal not terminated")
            return self._token(TokenKind.STRING, i, j + 1, text[i + 1 : j])
        if "0" <= c <= "9" or (c == "." and i + 1 < n and "0" <= text[i + 1] <= "9"):
            return self._number(i)
        if c == "[":
            j = text.find("]", i + 1)
            if j < 0:
                return self._error(i, "missing closing ']' in duration")
            value = parse_range(text[i + 1 : j])
            if isinstance(value, str):
                return self._error(i, value)
            return self._token(TokenKind.RANGE, i, j + 1, value)
        if is_ident_start(c):
            j = i + 1
            while j < n and is_ident_char(text[j]):
                j += 1
            word = text[i:j].lower()
            if word in _ALWAYS_KEYWORDS or (word in KEYWORDS and word not in FUNCTION_KEYWORDS):
                return self._token(TokenKind.KEYWORD, i, j, word)
            if word in FUNCTION_KEYWORDS:
                if self._is_function(j):
                    return self._token(TokenKind.KEYWORD, i, j, word)
                return self._token(TokenKind.IDENT, i, j, text[i:j])
            return self._token(TokenKind.IDENT, i, j, text[i:j])
        if c == "-":
            flag = self._flag(i)
            if flag is not None:
                return flag
            k = i + 1
            while k < n and text[k] in _DURATION_RUNES:
                k += 1
            if k > i + 1:
                ns = parse_duration(text[i:k])
                if ns is not None:
                    return self._token(TokenKind.DURATION, i, k, ns)
        two = text[i : i + 2]
        if len(two) == 2 and two in OPERATORS:
            return self._token(TokenKind.OP, i, i + 2, two)
        if c in OPERATORS:
            return self._token(TokenKind.OP, i, i + 1, c)
        return self._token(TokenKind.OTHER, i, i + 1, c)

    def _flag(self, i: int) -> Token | None:
        text, n = self.text, self.n
        if not text.startswith("--", i):
            return None
        j = i + 1
        while j < n and (text[j].isalpha() or text[j] == "-"):
            j += 1
        if text[i:j] in PARSER_FLAGS:
            return self._token(TokenKind.FLAG, i, j, text[i:j])
        return None

    def _string(self, i: int) -> Token:
        text, n = self.text, self.n
        j = i + 1
        while True:
            if j >= n or text[j] == "\n":
                return self._error(i, "literal not terminated")
            if text[j] == "\\":
                j += 2
                continue
            if text[j] == '"':
                break
            j += 1
        try:
            value = unquote_go(text[i + 1 : j])
        except ValueError:
            return self._error(i, "invalid syntax")
        return self._token(TokenKind.STRING, i, j + 1, value)

    def _number(self, i: int) -> Token:
        text, n = self.text, self.n
        j = i
        if text.startswith(("0x", "0X", "0o", "0O", "0b", "0B"), i):
            # Go's scanner takes based integers; Loki then fails to read them as floats
            j = i + 2
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            return self._token(TokenKind.NUMBER, i, j, text[i:j])
        while j < n and ("0" <= text[j] <= "9" or text[j] == "_"):
            j += 1
        if j < n and text[j] == ".":
            j += 1
            while j < n and ("0" <= text[j] <= "9" or text[j] == "_"):
                j += 1
        if j < n and text[j] in "eE":
            k = j + 1
            if k < n and text[k] in "+-":
                k += 1
            if not (k < n and "0" <= text[k] <= "9"):
                return self._error(i, "exponent has no digits")
            while k < n and "0" <= text[k] <= "9":
                k += 1
            j = k
        number = text[i:j]
        for runes, kind in ((_DURATION_RUNES, TokenKind.DURATION), (_BYTES_RUNES, TokenKind.BYTES)):
            k = j
            while k < n and text[k] in runes:
                k += 1
            if k == j:
                continue
            value = (
                parse_duration(text[i:k]) if kind is TokenKind.DURATION else parse_bytes(text[i:k])
            )
            if value is not None:
                return self._token(kind, i, k, value)
        return self._token(TokenKind.NUMBER, i, j, number)


def tokenize(text: str) -> list[Token]:
    return Lexer(text).tokenize()
