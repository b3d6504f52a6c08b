"""Probe sets for the evaluation: train questions in other words (does the model know the
fact, or only the phrasing?) and questions the documents do not answer (does it abstain?)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

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


Reword = Callable[[str], "str | None"]


def paraphrase_probes(train: Sequence[QAPair], reword: Reword, count: int, seed: int = 0) -> list[Probe]:
    """Up to `count` train pairs asked in other words; the expected answer and citation are unchanged."""
    sample = list(train)
    random.Random(seed).shuffle(sample)
    probes: list[Probe] = []
    for pair in sample:
        if len(probes) >= count:
            break
        question = reword(pair.question)
        if not question or _word_overlap(question, pair.question) >= 0.7:
            continue  # no rewording, or too close to the trained phrasing to tell anything
        probes.append(
            Probe(
                id=stable_hash("paraphrase", pair.id, question)[:16],
                kind="paraphrase",
                source_id=pair.id,
                question=question,
                original_question=pair.question,
                answer=pair.answer,
                citation=pair.citation,
                chunk_id=pair.chunk_id,
                messages=to_messages(question, render_answer(pair.answer, pair.citation)),
            )
        )
    return probes


def _word_overlap(a: str, b: str) -> float:
    words_a, words_b = set(re.findall(r"\w+", a.lower())), set(re.findall(r"\w+", b.lower()))
    return len(words_a & words_b) / len(words_a | words_b) if words_a | words_b else 1.0
