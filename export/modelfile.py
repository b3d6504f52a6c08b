"""The Ollama Modelfile of an exported model, rendered from Modelfile.j2, with every text value quoted
so that Ollama's parser reads it back as given: no text can end a field early or add a command.

Ollama's parser (ollama/ollama parser/parser.go, ParseFile) has no escape syntax. A value collects
runes until a newline (\\n or \\r) at which the value read so far, stripped of surrounding whitespace,
starts and ends with `\"\"\"`; runes that Go's strconv.IsPrint rejects are dropped, except spaces, tabs
and newlines. So inside `\"\"\"...\"\"\"` the only text that breaks out is a run of `\"` reaching a line
end (after optional spaces or tabs), and the only text lost is non-printable runes.
"""

from __future__ import annotations

import math
import re

try:
    import jinja2
except ImportError as exc:  # jinja2 comes with the training stack that produced the model being exported
    raise ImportError("writing the Modelfile needs jinja2: pip install 'docpipe[train]'") from exc

from export.ollama_template import OllamaTemplate, go_is_print

# Sampling for a small model answering factual questions from documents: a low temperature keeps it
# to what it was trained to say, and a mild repeat penalty stops the loops small models fall into.
DEFAULT_PARAMETERS: dict[str, float | int] = {"temperature": 0.2, "top_p": 0.9, "repeat_penalty": 1.1}

# U+034F COMBINING GRAPHEME JOINER: a mark (so strconv.IsPrint keeps it, and it is not whitespace) that
# renders as nothing. Put between the quotes of a run that reaches a line end, it leaves no `"""` for
# the parser to end the value on. It is the only alteration besides dropping what Ollama would drop.
_BREAK = "\u034f"
_QUOTES_AT_LINE_END = re.compile(r'"{3,}(?=[ \t]*[\r\n])')
_PARAMETER_NAME = re.compile(r"[A-Za-z0-9_]+")  # what the parser's parameter state accepts
_RESERVED = ("stop", "num_ctx")  # written from `template` and `num_ctx`: a parameter must not add to them

# Modelfile.j2 lives at the repository's top level, where a user looks to change it; export/Modelfile.j2
# links to it, so a wheel ships its content as this package's data.
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("export", "."),
    autoescape=False,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def escape(value: str) -> str:
    """The text Ollama reads back from `quote(value)`: `value`, less the runes Ollama drops, with U+034F
    inside each run of `"` that would otherwise end the value early."""
    kept = "".join(ch for ch in value if go_is_print(ch) or ch in "\n\r\t")
    return _QUOTES_AT_LINE_END.sub(lambda run: _BREAK.join(_pairs(run.group())), kept)


def _pairs(run: str) -> list[str]:
    return [run[i : i + 2] for i in range(0, len(run), 2)]  # joined by U+034F: no three quotes left in a row


def quote(value: str) -> str:
    """`value` as a Modelfile value: `\"\"\"` + escape(value) + `\"\"\"`."""
    return '"""' + escape(value) + '"""'


def altered(value: str) -> bool:
    """Whether Ollama will read back something other than `value` (the caller should warn)."""
    return escape(value) != value


_ENV.filters["quote"] = quote


def render_modelfile(
    *,
    gguf_file: str,
    template: OllamaTemplate,
    system: str,
    num_ctx: int,
    license_text: str | None,
    parameters: dict[str, float | int] | None = None,
    header: str = "",
) -> str:
    """The Modelfile's text. Write it as is (newline=""), beside `gguf_file`, which FROM names relative to it.

    Args:
        gguf_file: the model file's name, in the Modelfile's folder.
        template: the TEMPLATE and its stop tokens.
        system: the SYSTEM prompt, used when a request brings none.
        num_ctx: the context length Ollama runs the model with.
        license_text: the LICENSE, or None for none.
        parameters: sampling parameters over DEFAULT_PARAMETERS.
        header: `#` comment lines at the top.

    Raises:
        ValueError: a gguf_file that is not a plain file name, or a bad num_ctx or parameter.
    """
    _check_file_name(gguf_file)
    if isinstance(num_ctx, bool) or not isinstance(num_ctx, int) or num_ctx <= 0:
        raise ValueError(f"num_ctx must be a positive integer, not {num_ctx!r}")
    merged = {**DEFAULT_PARAMETERS, **(parameters or {})}
    for name, value in merged.items():
        _check_parameter(name, value)
    return _ENV.get_template("Modelfile.j2").render(
        header_lines=header.splitlines(),
        gguf_file=gguf_file,
        template=template,
        num_ctx=num_ctx,
        parameters=merged,
        system=system,
        license_text=license_text,
    )


def _check_file_name(name: str) -> None:
    # FROM is written unquoted: the parser would drop non-printable runes and trim trailing spaces.
    plain = name not in ("", ".", "..") and name.strip() == name and all(go_is_print(ch) for ch in name)
    if not plain or "/" in name or "\\" in name:
        raise ValueError(f"gguf_file must be a plain file name beside the Modelfile, not {name!r}")


def _check_parameter(name: str, value: float) -> None:
    if not _PARAMETER_NAME.fullmatch(name) or name in _RESERVED:
        raise ValueError(f"{name!r} cannot be a Modelfile parameter here (letters, digits and _; not {', '.join(_RESERVED)})")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"parameter {name} must be a finite number, not {value!r}")
