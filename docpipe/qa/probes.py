"""Probe sets for the evaluation: trained facts asked in held-out words (does the model know the
fact, or only the phrasing?) and questions the documents do not answer (does it abstain?)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from docpipe.contracts import Probe, QAPair
from docpipe.runtime.chat_format import ABSTAIN_ANSWER, render_answer, to_messages
from docpipe.runtime.citation import content_words
from docpipe.store import stable_hash

# Questions about general knowledge far from any particular organisation's documents. One
# that some chunk could answer (a chunk holding half its content words) is dropped, so a
# probe never asks what the documents answer.
OUT_OF_CORPUS = (
    "What is the boiling point of mercury in degrees Celsius?",
    "Who painted the ceiling of the Sistine Chapel?",
    "How many moons does Neptune have?",
    "What year did the Berlin Wall fall?",
    "What is the chemical symbol for tungsten?",
    "Who wrote the novel One Hundred Years of Solitude?",
    "What is the tallest mountain in Africa?",
    "How long is an Olympic marathon in kilometres?",
    "Which country won the 1998 FIFA World Cup?",
    "What is the speed of sound in dry air at sea level?",
    "What is the capital city of Mongolia?",
    "Who discovered penicillin?",
    "How many bones are in the adult human body?",
    "What is the main ingredient of guacamole?",
    "Which planet has the Great Red Spot?",
    "What language is spoken in Brazil?",
    "Who composed The Four Seasons?",
    "What is the freezing point of seawater?",
    "How many players are on a rugby union team?",
    "What is the largest desert in Asia?",
    "Which element has atomic number 79?",
    "Who was the first person to walk on the Moon?",
    "What is the longest river in South America?",
    "How many strings does a standard violin have?",
    "What is the national animal of Scotland?",
    "Which ocean surrounds the Maldives?",
    "What does a barometer measure?",
    "Who invented the telephone?",
    "What is the currency of Japan?",
    "In which city is the Hagia Sophia?",
    "What temperature does water boil at on the summit of Everest?",
    "How many hearts does an octopus have?",
    "What is the recipe for a classic margherita pizza?",
    "Which composer wrote the Moonlight Sonata?",
    "What is the orbital period of Mars in Earth days?",
    "How do you change a flat bicycle tyre?",
    "What is the population of Iceland?",
    "Who won the Nobel Prize in Literature in 2016?",
    "What is the wingspan of an albatross?",
    "Which mountain range separates Europe from Asia?",
)


def abstention_probes(chunk_words: Sequence[set[str]], count: int, seed: int = 0) -> list[Probe]:
    """Up to `count` out-of-corpus questions, each expecting an abstention; `chunk_words` = each chunk's content words."""
    far = [q for q in OUT_OF_CORPUS if not any(2 * len(content_words(q) & words) >= len(content_words(q)) for words in chunk_words)]
    random.Random(seed).shuffle(far)
    return [
        Probe(id=stable_hash("abstain", q)[:16], kind="abstain", question=q, answer=ABSTAIN_ANSWER, messages=to_messages(q, ABSTAIN_ANSWER))
        for q in far[:count]
    ]


def rephrased_probes(rephrased: Sequence[tuple[QAPair, QAPair]]) -> list[Probe]:
    """The held-out wordings of trained facts, each with the trained pair it rewords."""
    return [
        Probe(
            id=stable_hash("paraphrase", trained.id, held.question)[:16],
            kind="paraphrase",
            source_id=trained.id,
            question=held.question,
            original_question=trained.question,
            answer=trained.answer,
            citation=trained.citation,
            chunk_id=trained.chunk_id,
            messages=to_messages(held.question, render_answer(trained.answer, trained.citation)),
        )
        for held, trained in rephrased
    ]
