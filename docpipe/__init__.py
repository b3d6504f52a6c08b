"""docpipe: documents in, a small fine-tuned model that cites its sources out."""

__version__ = "0.1.0"
