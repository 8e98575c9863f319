"""What a statement's text tells without a database: the tables it names, its hash, its
first words. Used to find blockers and to fingerprint tables, never to decide what runs."""

from __future__ import annotations

import hashlib
import re

__all__ = ["IDENTIFIER", "QUOTED_TEXT", "digest", "normalize_query", "strip_comments", "tables_named_in"]

#: One name as SQL writes it: quoted ("…" with "" inside, `…` with `` inside) or bare.
IDENTIFIER = r"(?:\"(?:[^\"]|\"\")+\"|`(?:[^`]|``)+`|[\w$]+)"
#: A string literal ('…', with '' or a backslash escape inside), to blank before reading a text.
QUOTED_TEXT = re.compile(r"'(?:[^'\\]|''|\\.)*'", re.DOTALL)

_IDENTIFIER = r"(?:`[^`]+`|\"[^\"]+\"|\w+)"
_NAME = rf"({_IDENTIFIER}(?:\.{_IDENTIFIER})*)"
_COMMENT_ON = re.compile(rf"\bCOMMENT\s+ON\s+(TABLE|COLUMN)\s+{_NAME}", re.IGNORECASE)
_TABLE_AFTER = re.compile(
    rf"\b(?:TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?|ON|REFERENCES|INTO|UPDATE|FROM|JOIN)\s+(?:ONLY\s+)?{_NAME}"
    rf"|\bRENAME\s+TABLE\s+{_NAME}\s+TO\s+{_NAME}|\bRENAME\s+TO\s+{_NAME}",
    re.IGNORECASE,
)
_PART = re.compile(_IDENTIFIER)
_STRING = re.compile(r"'(?:[^']|'')*'")
#: Words that follow ON, FROM, ... in Django's SQL without being a table (ON DELETE CASCADE, ...).
_NOT_TABLES = {"SET", "SELECT", "TABLE", "NOT", "IF", "DELETE", "UPDATE", "CASCADE", "COLUMN", "ONLY", "NULL"}


def _parts(name: str) -> list[str]:
    return [part.strip('`"') for part in _PART.findall(name)]


def tables_named_in(sql: str) -> list[str]:
    """Table names a DDL/DML statement touches, unquoted, in order of appearance.

    Good enough for Django's own statements (each names its table after TABLE, ON,
    REFERENCES, INTO, UPDATE or FROM; COMMENT ON COLUMN names table.column).
    """
    text = _STRING.sub("''", sql)
    found: list[tuple[int, str]] = []
    for match in _COMMENT_ON.finditer(text):
        parts = _parts(match.group(2))
        found.append((match.start(), parts[-2] if match.group(1).upper() == "COLUMN" and len(parts) > 1 else parts[-1]))
    text = _COMMENT_ON.sub(lambda m: " " * len(m.group(0)), text)
    for match in _TABLE_AFTER.finditer(text):
        for group in match.groups():
            if group is None:
                continue
            raw = _PART.findall(group)[-1]
            name = raw.strip('`"')
            if raw[0] in '`"' or name.upper() not in _NOT_TABLES:
                found.append((match.start(), name))
    names: list[str] = []
    for _position, name in sorted(found, key=lambda item: item[0]):
        if name not in names:
            names.append(name)
    return names


def digest(text: str) -> str:
    """SHA-256 of ``text`` in hex: statement hashes and lock names."""
    return hashlib.sha256(text.encode()).hexdigest()


def strip_comments(sql: str) -> str:
    """``sql`` without its whole-line ``--`` comments, to look at what it starts with."""
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


#: Literals in another session's query, as pg_stat_statements normalises them: strings
#: ('...' with '' or \' escapes, E'...', dollar-quoted), and numbers that are not part of
#: a name. Double-quoted text is a string only where the vendor says so (MySQL).
_SINGLE = r"[EeNnBbXx]?'(?:[^'\\]|''|\\.)*'"
_DOLLAR = r"\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)?\$"
_DOUBLE = r"\"(?:[^\"\\]|\"\"|\\.)*\""
_NUMBER = r"(?<![\w$.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])"
_LITERALS = re.compile(rf"{_SINGLE}|{_DOLLAR}|{_NUMBER}", re.DOTALL)
_LITERALS_AND_DOUBLE = re.compile(rf"{_SINGLE}|{_DOLLAR}|{_DOUBLE}|{_NUMBER}", re.DOTALL)
#: An unterminated literal (a query cut short by the server): everything after its quote.
_OPEN_LITERAL = re.compile(r"[EeNnBbXx]?'.*$|\$\w*\$.*$", re.DOTALL)


def normalize_query(sql: str, *, double_quoted_strings: bool = False) -> str:
    """``sql`` with its literals replaced by ``?``: another session's query may hold secrets
    (a password, an API key), which byhand must neither print nor journal by default."""
    pattern = _LITERALS_AND_DOUBLE if double_quoted_strings else _LITERALS
    text = pattern.sub("?", sql)
    return _OPEN_LITERAL.sub("?", text)
