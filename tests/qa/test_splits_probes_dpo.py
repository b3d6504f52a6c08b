from docpipe.contracts import Chunk, Citation, QAPair
from docpipe.qa.curate import Draft, Rejection
from docpipe.qa.dpo import preference_pairs
from docpipe.qa.formats import to_alpaca, to_sharegpt, training_record
from docpipe.qa.probes import abstention_probes, rephrased_probes
from docpipe.qa.splits import asked, fact_id, split_by_question, split_by_section
from docpipe.runtime.chat_format import ABSTAIN_ANSWER, SYSTEM_PROMPT, parse_source_reference, render_answer


def chunk(cid: str, doc: str, section: list[str], text: str | None = None) -> Chunk:
    text = text or f"text of {cid}"
    return Chunk(id=cid, doc_id=doc, path=f"{doc}.pdf", text=text, start=0, end=len(text), section=section, tokens=3)


def pair(n: int, c: Chunk, page: int | None = 1) -> QAPair:
    citation = Citation(path=c.path, doc_id=c.doc_id, page=page, quote=c.text, start=0, end=len(c.text))
    return QAPair(
        id=f"p{n}",
        question=f"What is fact number {n} about {c.id}?",
        answer=f"Fact {n}.",
        citation=citation,
        chunk_id=c.id,
        section=c.section,
        tier="structured",
        producer="fake",
    )


def test_no_section_and_no_repeated_text_feeds_both_splits():
    chunks = {}
    for d in range(6):
        for s in range(3):
            for k in range(2):
                c = chunk(f"d{d}s{s}k{k}", f"doc{d}", [f"Part {s}"])
                chunks[c.id] = c
    twin = chunk("twin", "doc9", ["Copy"], text=chunks["d0s0k0"].text)  # the same page in another file
    chunks[twin.id] = twin
    pairs = [pair(i * 10 + j, c) for i, c in enumerate(chunks.values()) for j in range(3)]
    train, held = split_by_section(pairs, chunks, eval_fraction=0.2, seed=1)
    assert len(train) + len(held) == len(pairs) and held
    assert 0.1 <= len(held) / len(pairs) <= 0.35
    sections = lambda ps: {(chunks[p.chunk_id].doc_id, tuple(chunks[p.chunk_id].section)) for p in ps if p.chunk_id != "twin"}
    assert not sections(train) & sections(held)
    texts = lambda ps: {chunks[p.chunk_id].text for p in ps}
    assert not texts(train) & texts(held)
    assert split_by_section(pairs, chunks, 0.2, seed=1) == (train, held)  # deterministic


def test_a_corpus_with_one_section_is_split_by_chunk():
    chunks = {f"c{i}": chunk(f"c{i}", "doc", []) for i in range(10)}
    pairs = [pair(i, c) for i, c in enumerate(chunks.values())]
    train, held = split_by_section(pairs, chunks, 0.2)
    assert train and held and not {p.chunk_id for p in train} & {p.chunk_id for p in held}


def test_training_record_and_other_formats_carry_the_source_line():
    c = chunk("c1", "handbook", ["Loans"])
    record = training_record(pair(1, c, page=4))
    assert [m.role for m in record.messages] == ["system", "user", "assistant"]
    assert record.messages[0].content == SYSTEM_PROMPT
    assert record.messages[2].content == "Fact 1.\n\nSource: handbook.pdf, p. 4"
    assert parse_source_reference(record.messages[2].content) == ("handbook.pdf", 4)
    assert parse_source_reference(render_answer("Yes.", pair(2, c, page=None).citation)) == ("handbook.pdf", None)
    assert parse_source_reference("no source here") is None
    assert to_alpaca(record)["output"].endswith("p. 4") and to_alpaca(record)["instruction"] == record.question
    assert [t["from"] for t in to_sharegpt(record)["conversations"]] == ["system", "human", "gpt"]


def test_abstention_probes_avoid_what_the_corpus_talks_about():
    from docpipe.runtime.citation import content_words

    probes = abstention_probes([content_words("Mercury boils at 357 degrees Celsius."), {"unrelated"}], count=100)
    assert probes and all(p.answer == ABSTAIN_ANSWER and p.kind == "abstain" for p in probes)
    assert not any("mercury" in p.question for p in probes)
    assert probes[0].messages[-1].content == ABSTAIN_ANSWER


def test_rephrased_probes_keep_the_trained_answer_and_citation():
    c = chunk("c1", "handbook", [])
    trained = pair(0, c)
    probes = rephrased_probes([(asked(trained, "Tell me, regarding c1, the content of fact 0?"), trained)])
    assert [p.source_id for p in probes] == ["p0"] and probes[0].original_question == trained.question
    assert probes[0].question == "Tell me, regarding c1, the content of fact 0?"
    assert probes[0].answer == trained.answer and probes[0].citation.quote == c.text


def fact(n: int, c: Chunk, question: str) -> QAPair:
    """A pair quoting its own sentence of the chunk: one fact each."""
    quote = f"Sentence {n} of {c.id}."
    citation = Citation(path=c.path, doc_id=c.doc_id, quote=quote, start=0, end=len(quote))
    return QAPair(
        id=f"f{n}",
        question=question,
        answer=f"Value {n}.",
        citation=citation,
        chunk_id=c.id,
        section=c.section,
        tier="heuristic",
        producer="x",
    )


def corpus_facts(chunks: int = 12, per_chunk: int = 3) -> list[QAPair]:
    cs = [chunk(f"c{i}", f"doc{i % 4}", [f"Part {i}"]) for i in range(chunks)]
    subjects = ["annual leave", "the battery", "a hotel night", "the warranty", "the learning budget", "sick leave"]
    return [
        fact(i * per_chunk + k, c, f"What is the limit on {subjects[(i + k) % 6]} for entry {i * per_chunk + k} of {c.id}?")
        for i, c in enumerate(cs)
        for k in range(per_chunk)
    ]


def test_the_question_split_trains_on_every_chunk_and_holds_out_only_questions():
    pairs = corpus_facts()
    split = split_by_question(pairs, eval_fraction=0.15, phrasings=3, seed=3)
    trained_questions = {p.question for p, _ in split.train}
    assert {p.chunk_id for p in pairs} == {p.chunk_id for p, _ in split.train}  # no chunk is kept from the model
    # unseen: whole facts whose question was never trained, from chunks that were
    assert len(split.unseen) >= 10 and not {p.question for p, _ in split.unseen} & trained_questions
    assert not {f for _, f in split.unseen} & {f for _, f in split.train}
    assert len({p.chunk_id for p, _ in split.unseen}) == len(split.unseen)  # one fact per chunk at most
    # rephrased: a wording of a trained fact, never trained itself
    assert split.rephrased and all(held.question not in trained_questions for held, _ in split.rephrased)
    assert all(fact_id(trained) in {f for _, f in split.train} and held.answer == trained.answer for held, trained in split.rephrased)
    # several wordings per trained fact, each with the fact's answer and citation
    wordings = {}
    for p, f in split.train:
        wordings.setdefault(f, []).append(p)
    assert max(len(w) for w in wordings.values()) >= 2
    assert all(len({(p.answer, p.citation.quote) for p in w}) == 1 for w in wordings.values())
    assert split_by_question(pairs, 0.15, 3, seed=3) == split  # deterministic


def test_a_held_out_wording_that_repeats_a_training_question_is_dropped_as_a_leak():
    first = fact(1, chunk("c1", "handbook", []), "Which colour has the front door of the main building?")
    second = fact(2, chunk("c2", "handbook", []), "Which street does the delivery entrance of the warehouse face?")
    copy = "Which street does the delivery entrance of the warehouse face today?"  # the model rewords the first as the second
    split = split_by_question([first, second], eval_fraction=0.01, phrasings=1, reword={first.question: copy}.get, seed=0)
    assert split.leaks["rephrased"] == 1 and copy not in [held.question for held, _ in split.rephrased]


def test_dpo_prefers_the_models_own_failures_then_constructed_ones():
    chunks = [chunk(f"c{i}", f"doc{i % 2}", []) for i in range(4)]
    train = [pair(i, c) for i, c in enumerate(chunks)]
    failure = Rejection(
        Draft(question="q", answer="A made-up answer.", quote="not there", chunk_id="c0", tier="structured", producer="fake"),
        "citation",
        "quote not in source",
    )
    records = preference_pairs(train, [failure])
    assert len(records) == 4
    assert records[0].rejected_kind.startswith("model answer that failed")
    assert records[0].rejected[0].content.startswith("A made-up answer.")
    for record, p in zip(records, train):
        assert record.chosen[0].content == render_answer(p.answer, p.citation)
        assert record.rejected[0].content != record.chosen[0].content
        assert record.prompt[-1].model_dump() == {"role": "user", "content": p.question}
    assert {r.rejected_kind for r in records[1:]} <= {"other document's answer", "uncited answer", "wrong source"}


def test_the_split_is_the_same_in_every_process():
    # Regression: groups were named by whichever member union-find met first, in set order, which changes
    # with PYTHONHASHSEED: the same corpus gave 2,541/452 train/eval pairs in one process, 2,474/519 in another.
    import os
    import subprocess
    import sys

    code = (
        "from tests.qa.test_splits_probes_dpo import chunk, pair; from docpipe.qa.splits import split_by_section\n"
        # pages repeated in other files (a shared footer, a copied section) join their sections into one group
        "chunks = {c.id: c for c in (chunk(f'd{d}s{s}', f'doc{d}', [f'Part {s}'], text=f'page {(d * 4 + s) % 7}') for d in range(5) for s in range(4))}\n"
        "pairs = [pair(i, c) for i, c in enumerate(chunks.values())]\n"
        "print([p.id for p in split_by_section(pairs, chunks, 0.25, seed=0)[1]])"
    )
    held = {
        subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True
        ).stdout
        for seed in ("1", "2", "3", "4")
    }
    assert len(held) == 1 and held.pop().strip() != "[]"


def test_one_big_section_is_not_held_out_whole():
    # Regression: a section holding 37% of the pairs was held out whole when the target was 15%.
    big = chunk("big", "manual", ["Everything"])
    small = [chunk(f"s{i}", f"note{i}", ["Note"]) for i in range(20)]
    chunks = {c.id: c for c in [big, *small]}
    pairs = [pair(i, big) for i in range(60)] + [pair(100 + i, c) for i, c in enumerate(small) for _ in range(2)]
    for seed in range(10):
        _, held = split_by_section(pairs, chunks, eval_fraction=0.15, seed=seed)
        assert held and len(held) <= 1.5 * 0.15 * len(pairs), seed
