"""`python -m docpipe`, the same as the `docpipe` command."""

from docpipe.cli import app

app()
