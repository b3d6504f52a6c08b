"""Training examples that teach the model to say so when the documents do not answer.

Nothing in a Q&A dataset shows a model declining: trained only on answerable questions, it answers
everything, with an invented fact and an invented source. A share of out-of-corpus questions
answered "The documents do not say." teaches refusal (R-Tuning, Zhang et al. 2024). The bank is
kept apart from the evaluation's (`probes.OUT_OF_CORPUS`), so the abstention the evaluation
measures is on questions never trained on; a question some chunk could answer is left out.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import product

from docpipe.contracts import Citation, TrainingRecord
from docpipe.runtime.chat_format import ABSTAIN_ANSWER, render_answer, to_messages
from docpipe.runtime.citation import content_words
from docpipe.store import stable_hash

# General-knowledge subjects and what is asked of them, far from any organisation's documents.
_PLACES = ("Peru", "Norway", "Kenya", "Vietnam", "Portugal", "Chile", "Nepal", "Morocco", "Finland", "New Zealand", "Ghana", "Austria")
# Frames that the evaluation's questions do not use (no capital, currency or population), so that
# abstention is not measured on a question form trained on.
_PLACE_QUESTIONS = (
    "What is the national dish of {}?",
    "Which sea or ocean borders {}?",
    "What is the climate like in {}?",
    "Who is the head of state of {}?",
    "Which languages are spoken in {}?",
    "When did {} become independent?",
)
_THINGS = ("the planet Saturn", "the blue whale", "the Amazon rainforest", "the Eiffel Tower", "the human liver", "the Great Barrier Reef")
_THING_QUESTIONS = ("How big is {}?", "How old is {}?", "What is {} known for?", "Where can one find {}?")
_SINGLE = (
    "Who wrote the play Hamlet?",
    "What is the square root of 144?",
    "How many minutes are in a day?",
    "Who developed the theory of general relativity?",
    "What gas do plants absorb from the air?",
    "How do bees make honey?",
    "What is the best way to cook rice?",
    "Which team won the last Super Bowl?",
    "What will the weather be like tomorrow?",
    "How many teeth does an adult human have?",
    "What is the distance from the Earth to the Sun?",
    "Who is the current Secretary-General of the United Nations?",
    "What is the melting point of gold?",
    "How do I train a puppy to sit?",
    "What is the plot of the film Casablanca?",
    "Which instrument has 88 keys?",
    "What causes the northern lights?",
    "How many calories are in a banana?",
    "What is the deepest point in the ocean?",
    "Who founded the Roman Empire?",
    "What is the fastest land animal?",
    "How long does it take light to reach the Earth from the Sun?",
    "What is the national sport of Canada?",
    "Which vitamin does sunlight help the body make?",
)


def refusal_bank() -> list[str]:
    """Every question of the bank, in a fixed order."""
    return (
        [t.format(place) for t, place in product(_PLACE_QUESTIONS, _PLACES)]
        + [t.format(thing) for t, thing in product(_THING_QUESTIONS, _THINGS)]
        + list(_SINGLE)
    )


def refusal_records(chunk_words: Sequence[set[str]], count: int, seed: int = 0) -> list[TrainingRecord]:
    """Up to `count` out-of-corpus questions from the bank, each answered with the abstention.

    `chunk_words` are each chunk's content words: a question half of whose content words one chunk
    holds might be answered by the documents, and is not used.
    """
    far = [q for q in refusal_bank() if not any(2 * len(content_words(q) & words) >= len(content_words(q)) for words in chunk_words)]
    random.Random(seed).shuffle(far)
    return [_record(q) for q in far[:count]]


def _record(question: str) -> TrainingRecord:
    nowhere = Citation(path="", doc_id="", quote="", start=0, end=0)  # an abstention cites nothing
    return TrainingRecord(
        id=stable_hash("refusal", question)[:16],
        question=question,
        answer=ABSTAIN_ANSWER,
        citation=nowhere,
        chunk_id="",
        tier="heuristic",
        producer="refusal bank",
        kind="refusal",
        messages=to_messages(question, render_answer(ABSTAIN_ANSWER, None)),
    )
