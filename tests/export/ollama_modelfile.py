"""Ollama's Modelfile parser, ported to Python so tests can read back what docpipe writes as Ollama will.

A rune-by-rune port of `ParseFile` and its helpers (`parseRuneForState`, `unquote`, `isSpace`,
`isNewline`, ...) in github.com/ollama/ollama parser/parser.go, as of commit
00dc3af848b5ed632aef2c68c990a58fa83da2ec. What matters for quoting, and is kept exactly:

- a value ends at a newline (\\n or \\r) only when the value so far, after strings.TrimSpace (Unicode
  whitespace), unquotes: `\"\"\"...\"\"\"` (at least 6 bytes), `"..."`, or unquoted text;
- spaces and tabs in a value, and newlines that do not end it, are kept raw; every other rune is kept
  only when strconv.IsPrint accepts it (letters, marks, numbers, punctuation, symbols, ASCII space);
- there is no escape syntax at all.

For tests only: Ollama itself is the authority, this is how the tests consult it without a Go build of it.
"""

from __future__ import annotations

import unicodedata

NIL, NAME, VALUE, PARAMETER, MESSAGE, COMMENT = range(6)
_COMMANDS = {"from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", "message", "requires"}
# unicode.IsSpace, which strings.TrimSpace uses.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"


class ModelfileError(ValueError):
    """Where Ollama's ParseFile returns an error."""


def parse(text: str) -> list[tuple[str, str]]:
    """The (name, args) commands Ollama reads from a Modelfile; FROM is named "model", as in Ollama."""
    commands: list[tuple[str, str]] = []
    name, role, buffer, state, line = "", "", [], NIL, 1
    for r in text.removeprefix("\ufeff"):  # unicode.BOMOverride
        if _is_newline(r):
            line += 1
        nxt, r = _next_state(r, state, line)
        if nxt != state:
            if state == NAME:
                word = "".join(buffer)
                if word.lower() not in _COMMANDS:
                    raise ModelfileError(f"(line {line}): unknown command {word!r}")
                word = word.lower()
                if word == "from":
                    name = "model"
                elif word == "parameter":
                    nxt = PARAMETER
                else:
                    nxt = MESSAGE if word == "message" else nxt
                    name = word
            elif state == PARAMETER:
                name = "".join(buffer)
            elif state == MESSAGE:
                role = "".join(buffer)
                if role not in ("system", "user", "assistant"):
                    raise ModelfileError(f"(line {line}): bad message role {role!r}")
            elif state == VALUE:
                value, ok = _unquote(_trim_space("".join(buffer)))
                if not ok or _is_space(r):  # the value goes on: the rune is kept raw, printable or not
                    buffer.append(r)
                    continue
                commands.append((name, f"{role}: {value}" if role else value))
                role = ""
            buffer, state = [], nxt
        if r and _is_print(r):
            buffer.append(r)

    if state == VALUE:
        value, ok = _unquote(_trim_space("".join(buffer)))
        if not ok:
            raise ModelfileError("unexpected EOF: " + "".join(buffer))
        commands.append((name, f"{role}: {value}" if role else value))
    elif state not in (NIL, COMMENT):
        raise ModelfileError("unexpected EOF")
    if not any(command == "model" for command, _ in commands):
        raise ModelfileError("no FROM line")
    return commands


def _next_state(r: str, state: int, line: int) -> tuple[int, str]:
    """parseRuneForState: the next state, and the rune to keep ("" for Go's 0)."""
    if state == NIL:
        if r == "#":
            return COMMENT, ""
        return (NIL, "") if _is_space(r) or _is_newline(r) else (NAME, r)
    if state == NAME:
        if _is_alpha(r):
            return NAME, r
        if _is_space(r):
            return VALUE, ""
        raise ModelfileError(f"(line {line}): invalid command")
    if state == VALUE:
        return (NIL, r) if _is_newline(r) or _is_space(r) else (VALUE, r)
    if state in (PARAMETER, MESSAGE):
        if _is_alpha(r) or (state == PARAMETER and (r.isascii() and r.isdigit() or r == "_")):
            return state, r
        if _is_space(r):
            return VALUE, ""
        raise ModelfileError("unexpected EOF")
    return (NIL, "") if _is_newline(r) else (COMMENT, "")  # COMMENT


def _unquote(s: str) -> tuple[str, bool]:
    raw = s.encode()  # Go slices bytes
    if raw[:3] == b'"""':
        if len(raw) >= 6 and raw[-3:] == b'"""':
            return raw[3:-3].decode(), True
        return "", False
    if raw[:1] == b'"':
        if len(raw) >= 2 and raw[-1:] == b'"':
            return raw[1:-1].decode(), True
        return "", False
    return s, True


def _trim_space(s: str) -> str:
    return s.strip(_GO_SPACE)


def _is_print(r: str) -> bool:
    return r == " " or unicodedata.category(r)[0] in "LMNPS"  # strconv.IsPrint


def _is_alpha(r: str) -> bool:
    return "a" <= r <= "z" or "A" <= r <= "Z"


def _is_space(r: str) -> bool:
    return r in " \t"


def _is_newline(r: str) -> bool:
    return r in "\r\n"
