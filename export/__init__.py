"""Export a trained run: merge the adapter, write GGUF files (gguf-py, then llama.cpp's quantizer),
prove they behave like the trained model (`parity`), and write an Ollama Modelfile and a model card.
`export.run` is the stage."""

import trainers  # noqa: F401 - sets the Hugging Face libraries offline, before they are imported


class ExportError(RuntimeError):
    """An export that cannot go on; the message is one line that says what to do."""
