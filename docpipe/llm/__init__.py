"""The LLM gateway: every model call of docpipe goes through a client of this package."""
