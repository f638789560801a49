"""The Cypher tokenizer that feeds lark's LALR parser.

It owns the decisions a context-free LALR(1) grammar cannot make by itself: keywords versus
names (keywords after `.`, `:` or `$`, and map keys, are names), dotted function names
(`date.truncate(`) as one token, and which `(` opens a node pattern inside an expression
(its matching `)` is followed by a relationship arrow). Bounded: a query longer than
`MAX_QUERY_CHARS` or nested deeper than `MAX_NESTING` is refused with a clear error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lark import Token
from lark.lexer import Lexer

from cypher.errors import syntax_error

MAX_QUERY_CHARS = 1_000_000
MAX_NESTING = 200

KEYWORDS = {
    word: word.upper()
    for word in (
        "match",
        "optional",
        "where",
        "return",
        "with",
        "distinct",
        "as",
        "order",
        "by",
        "asc",
        "ascending",
        "desc",
        "descending",
        "skip",
        "limit",
        "unwind",
        "create",
        "merge",
        "on",
        "set",
        "remove",
        "delete",
        "detach",
        "union",
        "all",
        "call",
        "yield",
        "and",
        "or",
        "xor",
        "not",
        "in",
        "starts",
        "ends",
        "contains",
        "is",
        "null",
        "true",
        "false",
        "case",
        "when",
        "then",
        "else",
        "end",
        "exists",
        "any",
        "none",
        "single",
        "explain",
        "profile",
        "foreach",
    )
}
# Names that become special tokens only when a `(` follows: they have their own grammar.
SPECIAL_CALLS = {
    "reduce": "REDUCE",
    "shortestpath": "SHORTESTPATH",
    "allshortestpaths": "ALLSHORTESTPATHS",
}

PUNCTUATION = [
    ("..", "DOTDOT"),
    ("::", "DCOLON"),
    ("||", "CONCAT"),
    ("<>", "NE"),
    ("!=", "NE"),
    ("<=", "LE"),
    (">=", "GE"),
    ("+=", "PLUSEQ"),
    ("=~", "REGEQ"),
    ("(", "LPAR"),
    (")", "RPAR"),
    ("[", "LSQB"),
    ("]", "RSQB"),
    ("{", "LBRACE"),
    ("}", "RBRACE"),
    (",", "COMMA"),
    (".", "DOT"),
    (":", "COLON"),
    (";", "SEMI"),
    ("|", "VBAR"),
    ("=", "EQ"),
    ("<", "LT"),
    (">", "GT"),
    ("+", "PLUS"),
    ("-", "MINUS"),
    ("*", "STAR"),
    ("/", "SLASH"),
    ("%", "PERCENT"),
    ("^", "CARET"),
    ("&", "AMP"),
    ("!", "BANG"),
]
# Unicode dashes and arrows that Cypher accepts as "-" (the TCK uses some of them).
_DASHES = "\u00ad\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"

_DIGIT_KEY = re.compile(r"\d\w*(?=\s*:)")
"""A map key that starts with a digit (`{1B2c: 1}`): not a name, so not a key."""
_WS = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/)+", re.S)
_IDENT = re.compile(r"[^\W\d]\w*", re.U)
_DOTTED_CALL = re.compile(r"[^\W\d]\w*(?:\s*\.\s*(?:[^\W\d]\w*|`[^`]*`))*\s*\(", re.U)
_NUMBER = re.compile(
    r"0x[0-9A-Za-z_]*|0o[0-9A-Za-z_]*|"
    r"(?:\d+\.\d+|\.\d+|\d+)(?:[eE][-+]?\d+)?[A-Za-z_]*"
    r"|\d+[eE][-+]?\d+"
)
_PARAM = re.compile(r"\$(?:([^\W\d]\w*)|(\d+)|`([^`]*)`)", re.U)


class CypherLexer(Lexer):
    """A hand-written lexer for lark (``Lark(..., lexer=CypherLexer)``)."""

    def __init__(self, lexer_conf: object) -> None:
        pass

    def lex(self, data: str) -> Iterator[Token]:  # type: ignore[override]
        tokens = tokenize(data)
        mark_pattern_parens(tokens)
        mark_label_bars(tokens)
        return iter(tokens)


def _tok(kind: str, value: object, text: str, pos: int, end: int, line_starts: list[int]):
    line = _line_of(pos, line_starts)
    column = pos - line_starts[line - 1] + 1
    token = Token(kind, value, pos, line, column, line, column + (end - pos), end)
    return token


def _line_of(pos: int, line_starts: list[int]) -> int:
    low, high = 0, len(line_starts) - 1
    while low < high:
        mid = (low + high + 1) // 2
        if line_starts[mid] <= pos:
            low = mid
        else:
            high = mid - 1
    return low + 1


def tokenize(data: str) -> list[Token]:
    if len(data) > MAX_QUERY_CHARS:
        raise syntax_error(f"query longer than {MAX_QUERY_CHARS} characters", "QueryTooLong")
    line_starts = [0] + [m.end() for m in re.finditer("\n", data)]
    tokens: list[Token] = []
    pos = 0
    n = len(data)
    depth = 0
    while pos < n:
        m = _WS.match(data, pos)
        if m:
            pos = m.end()
            continue
        if data.startswith("/*", pos):
            raise _err("unterminated comment", pos, line_starts)
        ch = data[pos]
        prev = tokens[-1].type if tokens else None
        if ch in "'\"":
            value, end = _read_string(data, pos, line_starts)
            tokens.append(_tok("STRING", value, data[pos:end], pos, end, line_starts))
            pos = end
            continue
        if ch == "`":
            end = data.find("`", pos + 1)
            while end != -1 and data.startswith("``", end):
                end = data.find("`", end + 2)
            if end == -1:
                raise _err("unterminated escaped name", pos, line_starts)
            name = data[pos + 1 : end].replace("``", "`")
            tokens.append(_tok("NAME", name, data[pos : end + 1], pos, end + 1, line_starts))
            pos = end + 1
            continue
        if ch == "$":
            m = _PARAM.match(data, pos)
            if not m and data.startswith("$(", pos):
                raise _err(
                    "dynamic labels and types $(...) are not supported: name them in the query",
                    pos,
                    line_starts,
                    "UnsupportedFeature",
                )
            if not m:
                raise _err("invalid parameter", pos, line_starts)
            name = m.group(1) or m.group(2) or m.group(3) or ""
            tokens.append(_tok("PARAM", name, m.group(0), pos, m.end(), line_starts))
            pos = m.end()
            continue
        if ch.isdigit() or (
            ch == "."
            and pos + 1 < n
            and data[pos + 1].isdigit()
            and prev not in ("NAME", "RPAR", "RSQB", "RBRACE")
        ):
            m = _NUMBER.match(data, pos)
            assert m is not None
            text = m.group(0)
            key = _DIGIT_KEY.match(data, pos) if prev in ("LBRACE", "COMMA") else None
            if key is not None and re.search(r"[A-Za-z_]", key.group(0)):
                raise _err(f"a name cannot start with a digit: {text!r}", pos, line_starts)
            tokens.append(_number_token(text, pos, m.end(), line_starts))
            pos = m.end()
            continue
        if ch.isalpha() or ch == "_":
            m = _IDENT.match(data, pos)
            assert m is not None
            word = m.group(0)
            lower = word.lower()
            call = _DOTTED_CALL.match(data, pos)
            after_dot = (
                (prev in ("DOT", "COLON") and not _is_map_value(tokens))
                or (prev == "VBAR" and len(tokens) > 2 and tokens[-3].type in ("COLON", "VBAR"))
                or prev in ("BANG", "AMP")
            )
            if call and not after_dot and lower not in KEYWORDS:
                text = call.group(0)[:-1].rstrip()
                name = ".".join(part.strip().strip("`") for part in text.split("."))
                kind = SPECIAL_CALLS.get(name.lower(), "FUNCNAME")
                tokens.append(_tok(kind, name, text, pos, pos + len(text), line_starts))
                pos += len(text)
                continue
            kind = "NAME"
            if lower in KEYWORDS and not after_dot and not _is_map_key(data, m.end(), prev):
                kind = KEYWORDS[lower]
            elif lower == "count" and not after_dot and _opens_subquery(data, m.end()):
                kind = "COUNT"
            elif lower == "collect" and not after_dot and _opens_subquery(data, m.end()):
                kind = "COLLECT"
            tokens.append(_tok(kind, word, word, pos, m.end(), line_starts))
            pos = m.end()
            continue
        if ch in _DASHES:
            tokens.append(_tok("MINUS", ch, ch, pos, pos + 1, line_starts))
            pos += 1
            continue
        for text, kind in PUNCTUATION:
            if data.startswith(text, pos):
                if kind in ("LPAR", "LSQB", "LBRACE"):
                    depth += 1
                    if depth > MAX_NESTING:
                        raise syntax_error(f"nesting deeper than {MAX_NESTING}", "NestingTooDeep")
                elif kind in ("RPAR", "RSQB", "RBRACE"):
                    depth -= 1
                tokens.append(_tok(kind, text, text, pos, pos + len(text), line_starts))
                pos += len(text)
                if kind == "DCOLON":
                    pos = _read_type_token(data, pos, tokens, line_starts)
                break
        else:
            raise _err(f"unexpected character {ch!r}", pos, line_starts)
    return tokens


_SUBQUERY_START = re.compile(
    r"\s*\{\s*(\(|(match|optional|with|unwind|call|return|union)\b(?!\s*:))", re.IGNORECASE
)


def _read_type_token(data: str, pos: int, tokens: list[Token], line_starts: list[int]) -> int:
    """After `::`, the type (`INTEGER NOT NULL`, `LIST<STRING> | FLOAT`) as one TYPESPEC
    token whose value is a `cypher.types.TypeSpec`; the position after it."""
    from cypher.types import TypeSyntaxError, read_type

    try:
        spec, end = read_type(data, pos)
    except TypeSyntaxError as error:
        raise _err(str(error), pos, line_starts) from None
    start = pos + (len(data[pos:end]) - len(data[pos:end].lstrip()))
    tokens.append(_tok("TYPESPEC", spec, data[start:end], start, end, line_starts))
    return end


def _opens_subquery(data: str, end: int) -> bool:
    """Whether `count` at `end` opens COUNT { ... } rather than a map projection."""
    return _SUBQUERY_START.match(data, end) is not None


def _is_map_value(tokens: list[Token]) -> bool:
    """Whether the last token is the `:` after a map key (so a value, not a label, follows)."""
    if len(tokens) < 3 or tokens[-1].type != "COLON":
        return False
    return tokens[-2].type == "NAME" and tokens[-3].type in ("LBRACE", "COMMA")


def _is_map_key(data: str, end: int, prev: str | None) -> bool:
    if prev not in ("LBRACE", "COMMA"):
        return False
    rest = data[end : end + 40].lstrip()
    return rest.startswith(":")


def _err(message: str, pos: int, line_starts: list[int], detail: str = "UnexpectedSyntax"):
    """A syntax error at `pos`, with its line and column."""
    line = _line_of(pos, line_starts)
    return syntax_error(message, detail, line, pos - line_starts[line - 1] + 1)


def _number_token(text: str, pos: int, end: int, line_starts: list[int]) -> Token:
    lower = text.lower()
    try:
        if lower.startswith("0x"):
            value: object = int(text[2:], 16)
            kind = "INTEGER"
        elif lower.startswith("0o"):
            value = int(text[2:], 8)
            kind = "INTEGER"
        elif re.fullmatch(r"\d+", text):
            value = int(text, 8) if len(text) > 1 and text.startswith("0") else int(text)
            kind = "INTEGER"
        elif re.fullmatch(r"(?:\d+\.\d+|\.\d+|\d+)(?:[eE][-+]?\d+)?", text):
            value = float(text)
            kind = "FLOAT"
            if value == float("inf"):
                raise _err(
                    "floating point number is too large", pos, line_starts, "FloatingPointOverflow"
                )
        else:
            raise ValueError(text)
    except ValueError:
        raise _err(
            f"invalid number literal {text!r}", pos, line_starts, "InvalidNumberLiteral"
        ) from None
    return _tok(kind, value, text, pos, end, line_starts)


_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _read_string(data: str, pos: int, line_starts: list[int]) -> tuple[str, int]:
    quote = data[pos]
    out: list[str] = []
    i = pos + 1
    n = len(data)
    while i < n:
        ch = data[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= n:
                break
            esc = data[i + 1]
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                i += 2
                continue
            if esc in "uU":
                width = 4 if esc == "u" else 8
                digits = data[i + 2 : i + 2 + width]
                if len(digits) != width or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
                    raise _unicode_err(pos, line_starts)
                code = int(digits, 16)
                if code > 0x10FFFF:
                    raise _unicode_err(pos, line_starts)
                out.append(chr(code))
                i += 2 + width
                continue
            out.append("\\" + esc)
            i += 2
            continue
        out.append(ch)
        i += 1
    raise _err("unterminated string", pos, line_starts)


def _unicode_err(pos: int, line_starts: list[int]):
    return _err("invalid unicode escape", pos, line_starts, "InvalidUnicodeLiteral")


def mark_pattern_parens(tokens: list[Token]) -> None:
    """Retype a `(` as NODE_LPAR when its `)` is followed by a relationship arrow."""
    stack: list[int] = []
    match_of: dict[int, int] = {}
    for index, token in enumerate(tokens):
        if token.type == "LPAR":
            stack.append(index)
        elif token.type == "RPAR" and stack:
            match_of[stack.pop()] = index
    count = len(tokens)
    for open_index, close_index in match_of.items():
        after = close_index + 1
        if after + 1 >= count:
            continue
        first, second = tokens[after].type, tokens[after + 1].type
        if (first == "MINUS" and second in ("MINUS", "LSQB")) or (
            first == "LT" and second == "MINUS"
        ):
            tokens[open_index].type = "NODE_LPAR"


_LABEL_STARTS = ("COLON", "LBAR", "AMP", "BANG")
_AFTER_A_LABEL = frozenset(
    (
        *("RPAR", "VBAR", "AMP", "LBRACE", "STAR", "RBRACE", "COMMA", "SEMI", "EQ", "NE"),
        *("WHERE", "RETURN", "WITH", "AND", "OR", "XOR", "AS", "THEN", "ELSE", "END", "WHEN"),
        *("ORDER", "SKIP", "LIMIT", "MATCH", "OPTIONAL", "CREATE", "MERGE", "SET", "DELETE"),
        *("DETACH", "REMOVE", "UNWIND", "CALL", "FOREACH", "UNION", "IS", "ASC", "DESC"),
        *("ASCENDING", "DESCENDING"),
    )
)
"""Tokens that may follow the last label of a label expression."""


def mark_label_bars(tokens: list[Token]) -> None:
    """Retype a `|` between two labels (`n:A|B`, `n:(A|B)`, `n:(A&B)|C`) as LBAR, so that a
    label expression can be an expression (`WHERE n:A|B`). A `|` stays VBAR where what
    follows reads as an expression (`[x IN l WHERE x:A | x.name]`, `[... WHERE x:A | y]`)."""
    opener: dict[int, int] = {}
    stack: list[int] = []
    for index, token in enumerate(tokens):
        if token.type in ("LPAR", "NODE_LPAR"):
            stack.append(index)
        elif token.type == "RPAR" and stack:
            opener[index] = stack.pop()
    count = len(tokens)

    def in_label(index: int) -> bool:
        """Whether the token at `index` ends a label or a group of labels."""
        token = tokens[index]
        if token.type == "NAME":
            before = tokens[index - 1].type if index > 0 else None
            if before in _LABEL_STARTS:
                return True
            return before == "LPAR" and index > 1 and tokens[index - 2].type in _LABEL_STARTS
        if token.type == "RPAR" and index in opener:
            start = opener[index]
            return start > 0 and tokens[start - 1].type in _LABEL_STARTS
        return False

    for index in range(1, count - 1):
        token = tokens[index]
        if token.type != "VBAR" or not in_label(index - 1):
            continue
        following = tokens[index + 1].type
        if following == "NAME":
            after = tokens[index + 2].type if index + 2 < count else None
            if after is not None and after not in _AFTER_A_LABEL:
                continue
        elif following not in ("BANG", "LPAR"):
            continue
        token.type = "LBAR"
