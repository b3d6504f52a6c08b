"""Question/answer pairs from a chunk's own text, without an LLM: the last rung of the generation ladder.

Rules read the chunk's structure (definitions, table rows under their header, lists under their
intro, fields, headings, sentences with dates and numbers, subject-verb-object sentences) and
every pair quotes the verbatim span it was made from. spaCy's parse sharpens the sentence rules
when spaCy and its English model are installed; without them regular expressions do the same,
more coarsely. `paraphrase` rewords a question for probe sets that detect memorised phrasing.

Modules, in the order the data flows: `layout` reads the chunk, `topics` finds what a sentence is
about, `rules` turns the layout into candidate pairs, `parse` adds spaCy's sentence questions,
`pairs` checks and picks the best, and `rewording` holds `paraphrase`.
"""

from docpipe.qa.extractive.layout import information_units
from docpipe.qa.extractive.pairs import MIN_SUPPORT, extractive_pairs
from docpipe.qa.extractive.parse import MAX_PARSED, SPACY_MODELS
from docpipe.qa.extractive.rewording import MAX_JACCARD, paraphrase
from docpipe.qa.extractive.rules import RULE_SCORES, RuleDraft

__all__ = [
    "MAX_JACCARD",
    "MAX_PARSED",
    "MIN_SUPPORT",
    "RULE_SCORES",
    "SPACY_MODELS",
    "RuleDraft",
    "extractive_pairs",
    "information_units",
    "paraphrase",
]
