"""Export a trained run: merge the adapter, write GGUF files (gguf-py, then llama.cpp's quantizer),
prove they behave like the trained model (`parity`), and write an Ollama Modelfile and a model card.
`export.run` is the stage."""

from docpipe.errors import DocpipeError
from docpipe.runtime import offline

offline.apply()  # before transformers or gguf is imported


class ExportError(DocpipeError, RuntimeError):
    """An export that cannot go on; the message is one line that says what to do."""

    stage = "export"
