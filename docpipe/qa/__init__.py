"""Question/answer pairs: generation, citation checks, curation."""
