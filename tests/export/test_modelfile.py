"""The Modelfile reads back, through a port of Ollama's own parser, as exactly what docpipe meant:
one FROM, no injected command, and every text value equal to its input but for the documented U+034F."""

from __future__ import annotations

import pytest

from export.modelfile import (
    DEFAULT_PARAMETERS,
    altered,
    escape,
    quote,
    render_modelfile,
)
from export.ollama_template import OllamaTemplate, ollama_template
from tests.export.ollama_modelfile import ModelfileError, parse

CGJ = "\u034f"
CHATML = OllamaTemplate(
    "chatml",
    "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
    ("<|im_end|>", "<|im_start|>"),
    "",
)

# Read back unchanged: none of these has a run of quotes reaching a line end, nor a rune Ollama drops.
EXACT = [
    'ends with a quote"',
    '"starts with one',
    '"',
    '""',
    '"""',
    '""""',
    'mid """ line',
    'ends """',
    '""" """',
    "back\\slash \\n \\\\",
    "{{ .System }} {{ }}",
    "é 中文 🙂",
    "  \n padded \n  ",
    "",
    "crlf\r\nline\r\n",
    "tab\tsep",
    "\n\nleading newlines",
]
# Altered: quotes that would end the value early get U+034F, and what Ollama drops is dropped here too.
BREAKOUTS = [
    '"""\nFROM evil.gguf\nSYSTEM """',
    '"""   \nPARAMETER temperature 9',
    '""""\nafter',
    '"""\t \r\nFROM x',
    '"""\u00a0\nFROM evil.gguf',
    '"""\u200b\rFROM evil.gguf',
    'x"""\n"""\n',
]
DROPPED = ["nbsp\u00a0here", "zwj 👩\u200d💻", "bell\x07", "line\u2028sep"]


def _render(**overrides) -> str:
    fields = {
        "gguf_file": "x.gguf",
        "template": CHATML,
        "system": "Answer from the documents.",
        "num_ctx": 4096,
        "license_text": "Apache-2.0",
    }
    return render_modelfile(**{**fields, **overrides})


def _printable(text: str) -> str:
    # Python's isprintable is Go's strconv.IsPrint (Unicode versions aside): what Ollama's parser keeps
    return "".join(ch for ch in text if ch.isprintable() or ch in "\n\r\t")


def _values(commands: list[tuple[str, str]], name: str) -> list[str]:
    return [args for command, args in commands if command == name]


def test_a_plain_modelfile_reads_back():
    commands = parse(_render(header="docpipe export\nbase: smollm2"))
    names = [name for name, _ in commands]
    assert names == ["model", "template", "stop", "stop", "num_ctx", *DEFAULT_PARAMETERS, "system", "license"]
    assert _values(commands, "model") == ["./x.gguf"]
    assert _values(commands, "template") == [CHATML.go_template]
    assert _values(commands, "stop") == ["<|im_end|>", "<|im_start|>"]
    assert _values(commands, "num_ctx") == ["4096"]
    assert _values(commands, "temperature") == ["0.2"] and _values(commands, "top_p") == ["0.9"]
    assert _values(commands, "system") == ["Answer from the documents."]
    assert _values(commands, "license") == ["Apache-2.0"]


def test_without_a_license_there_is_no_license_command():
    assert not _values(parse(_render(license_text=None)), "license")


@pytest.mark.parametrize("value", EXACT + BREAKOUTS + DROPPED)
def test_hostile_text_values_read_back_and_inject_nothing(value):
    template = OllamaTemplate("chatml", value, ("<|im_end|>", value), "")
    commands = parse(_render(template=template, system=value, license_text=value, header=value))
    assert [name for name, _ in commands] == ["model", "template", "stop", "stop", "num_ctx", *DEFAULT_PARAMETERS, "system", "license"]
    assert _values(commands, "model") == ["./x.gguf"]
    for read in (*_values(commands, "template"), _values(commands, "stop")[1], *_values(commands, "system"), *_values(commands, "license")):
        assert read == escape(value)  # what docpipe records is what Ollama reads
        assert read.replace(CGJ, "") == _printable(value)  # the only change: U+034F, and runes Ollama drops anyway


@pytest.mark.parametrize("value", EXACT)
def test_values_that_need_no_change_are_not_altered(value):
    assert not altered(value) and quote(value) == f'"""{value}"""'


@pytest.mark.parametrize("value", BREAKOUTS + DROPPED)
def test_values_ollama_cannot_read_back_are_reported_altered(value):
    assert altered(value)


def test_a_breakout_gets_through_naive_quoting():
    # Why quote() exists: the port reads a value written as """value""" the way Ollama would, injection included.
    value = '"""\nFROM evil.gguf\nSYSTEM """'
    naive = f'FROM ./x.gguf\nSYSTEM """{value}"""\n'
    assert parse(naive) == [("model", "./x.gguf"), ("system", ""), ("model", "evil.gguf"), ("system", "")]
    assert parse(f"FROM ./x.gguf\nSYSTEM {quote(value)}\n") == [("model", "./x.gguf"), ("system", escape(value))]


def test_a_hostile_default_system_prompt_survives_the_modelfile():
    # The default is a Go string constant in the template, so it reaches Ollama whole, NBSP and all.
    default = 'Say {{ .Content }} "as is" """\nor \\ not}}\t\u00a0café'

    def render(messages):
        head = f"<|im_start|>system\n{default}<|im_end|>\n" if messages[0]["role"] != "system" else ""
        turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return head + turns + "<|im_start|>assistant\n"

    template = ollama_template(render, bos_token=None, eos_token="<|im_end|>", add_bos=False)
    assert not altered(template.go_template)
    assert _values(parse(_render(template=template)), "template") == [template.go_template]


def test_parameters_override_the_defaults():
    commands = parse(_render(parameters={"temperature": 0.7, "top_k": 40, "min_p": 1e-05}))
    assert _values(commands, "temperature") == ["0.7"] and _values(commands, "top_k") == ["40"]
    assert _values(commands, "min_p") == ["1e-05"] and _values(commands, "repeat_penalty") == ["1.1"]


@pytest.mark.parametrize(
    "gguf_file",
    ["", ".", "..", "../x.gguf", "dir/x.gguf", "dir\\x.gguf", "x\n.gguf", "x.gguf\nSYSTEM evil", "x.gguf ", "x\u00a0.gguf", "x\r.gguf"],
)
def test_a_gguf_file_that_is_not_a_plain_name_is_refused(gguf_file):
    with pytest.raises(ValueError, match="gguf_file"):
        _render(gguf_file=gguf_file)


def test_a_gguf_file_name_with_spaces_reads_back():
    assert _values(parse(_render(gguf_file="my model Q4_K_M.gguf")), "model") == ["./my model Q4_K_M.gguf"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"num_ctx": 0},
        {"num_ctx": True},
        {"num_ctx": "4096"},
        {"parameters": {"temperature": float("nan")}},
        {"parameters": {"temperature": "0.2"}},
        {"parameters": {"top k": 1}},
        {"parameters": {"x\nSYSTEM": 1}},
        {"parameters": {"stop": 1}},
        {"parameters": {"num_ctx": 1}},
    ],
)
def test_bad_numbers_and_parameter_names_are_refused(overrides):
    with pytest.raises(ValueError):
        _render(**overrides)


@pytest.mark.parametrize(
    "text, commands",
    [
        # Expectations from Ollama's own parser tests (parser/parser_test.go), so the port is held to Ollama.
        ("FROM     FOOO BAR    ", [("model", "FOOO BAR")]),
        ('FROM "FOO  BAR  "', [("model", "FOO  BAR  ")]),
        ('FROM foo\nSYSTEM """\nThis is a\nmultiline system.\n"""\n', [("model", "foo"), ("system", "\nThis is a\nmultiline system.\n")]),
        ('FROM foo\nSYSTEM """"""\n', [("model", "foo"), ("system", "")]),
        ('FROM foo\nPARAMETER stop """### User:\n"""', [("model", "foo"), ("stop", "### User:\n")]),
        ("\n# comment\nFROM foo\n\t", [("model", "foo")]),
        ("FROM foo\nMESSAGE user Hey there!\n", [("model", "foo"), ("message", "user: Hey there!")]),
    ],
)
def test_the_parser_port_agrees_with_ollamas_tests(text, commands):
    assert parse(text) == commands


@pytest.mark.parametrize(
    "text", ['FROM foo\nSYSTEM """never closed\n', "PARAMETER top_k 1\n", "FROM foo\nBAD x\n", "FROM foo\nMESSAGE badguy hi\n"]
)
def test_the_parser_port_fails_where_ollama_does(text):
    with pytest.raises(ModelfileError):
        parse(text)
