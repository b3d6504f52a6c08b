from docpipe.config import GenerateConfig
from docpipe.contracts import ElementKind, QAPair
from docpipe.qa.curate import CITATION, DEDUP, QUALITY, SUPPORT, Draft, Rejection, Source, check, curate
from tests.qa.builders import document, whole_chunk

CFG = GenerateConfig()
LIBRARY = document(
    "rules/library.pdf",
    [
        ("The Alder Reading Room opens at 8:30 on weekdays.", 1),
        ("Borrowers may keep \u201cshort loan\u201d books for 48 hours; the fine is 2 euros per day.", 2),
    ],
)
SOURCE = Source(whole_chunk(LIBRARY), LIBRARY)


def draft(question: str, answer: str, quote: str, tier: str = "structured") -> Draft:
    return Draft(question=question, answer=answer, quote=quote, chunk_id=SOURCE.chunk.id, tier=tier, producer="fake")


def test_a_good_pair_gets_a_citation_into_the_document_with_its_page():
    pair = check(draft("How long can short loan books be kept?", "48 hours.", 'may keep "short loan" books for 48 hours'), SOURCE, CFG)
    assert isinstance(pair, QAPair)
    c = pair.citation
    assert LIBRARY.text[c.start : c.end] == c.quote  # the document's own characters, curly quotes included
    assert "\u201cshort loan\u201d" in c.quote
    assert (c.page, c.path, c.doc_id) == (2, "rules/library.pdf", LIBRARY.doc_id)


def test_each_check_rejects_with_its_reason():
    cases = [
        (draft("When does the room open?", "At 9:00.", "The room opens at 9:00 every day."), CITATION, "quote not in source"),
        (draft("When does the room open?", "At midnight on Sundays only.", "opens at 8:30 on weekdays"), SUPPORT, "answer not supported"),
        (draft("Open?", "8:30.", "opens at 8:30 on weekdays"), QUALITY, "question too short"),
        (
            draft("When does the Alder Reading Room open?", "The Alder Reading Room opens", "The Alder Reading Room opens"),
            QUALITY,
            "answer restates the question",
        ),
        (
            draft("Which volcano erupted in Iceland recently?", "8:30 on weekdays.", "opens at 8:30 on weekdays"),
            QUALITY,
            "question not answerable",
        ),
    ]
    for candidate, stage, reason in cases:
        result = check(candidate, SOURCE, CFG)
        assert isinstance(result, Rejection), candidate
        assert (result.stage, result.reason.startswith(reason)) == (stage, True), result


def test_running_footers_and_page_numbers_are_boilerplate_but_a_one_off_header_is_not():
    footer = "Annual report 2024 - Confidential"
    doc = document(
        "report.docx", [(footer, 1), ("Revenue grew by 12 percent in 2024.", 1), (footer, 2), ("Page 2 of 9", 2)], kind=ElementKind.footer
    )
    source = Source(whole_chunk(doc), doc)
    ask = lambda q, a, quote: check(
        Draft(question=q, answer=a, quote=quote, chunk_id=source.chunk.id, tier="structured", producer="fake"), source, CFG
    )
    for result in (
        ask("What does the annual report footer say?", "Annual report 2024 - Confidential", footer),
        ask("Which page of the annual report is this?", "Page 2 of 9", "Page 2 of 9"),
    ):
        assert isinstance(result, Rejection) and result.reason.startswith("boilerplate"), result
    assert isinstance(ask("By how much did revenue grow in 2024?", "12 percent.", "Revenue grew by 12 percent"), QAPair)


def test_a_question_may_name_the_file_and_heading_the_quote_does_not():
    doc = document("guides/Alder_Handbook.pdf", [("Opening hours", 1), ("Weekdays from 8:30.", 1)], kind=ElementKind.title)
    source = Source(whole_chunk(doc), doc)
    result = check(
        Draft(
            question="What are the opening hours in the Alder handbook?",
            answer="Weekdays from 8:30.",
            quote="Weekdays from 8:30.",
            chunk_id=source.chunk.id,
            tier="heuristic",
            producer="extractive",
        ),
        source,
        CFG,
    )
    assert isinstance(result, QAPair), result


def test_a_yes_no_answer_may_repeat_the_question():
    result = check(
        draft("Does the Alder Reading Room open at 8:30 on weekdays?", "Yes, it opens at 8:30 on weekdays.", "opens at 8:30 on weekdays"),
        SOURCE,
        CFG,
    )
    assert isinstance(result, QAPair)


def test_curate_counts_the_funnel_and_drops_duplicates_with_their_reason():
    drafts = [
        draft("When does the Alder Reading Room open?", "At 8:30 on weekdays.", "opens at 8:30 on weekdays"),
        draft("When does the Alder Reading Room open ?", "8:30 on weekdays.", "opens at 8:30 on weekdays"),  # same question
        draft("What is the fine for a late short loan book?", "2 euros per day.", "the fine is 2 euros per day"),
        draft("What is the fee?", "10 euros.", "The fee is 10 euros."),  # not in the source
    ]
    curated = curate(drafts, {SOURCE.chunk.id: SOURCE}, CFG)
    assert [p.question for p in curated.accepted] == [drafts[0].question, drafts[2].question]
    assert curated.funnel == {"candidates": 4, CITATION: 3, SUPPORT: 3, QUALITY: 3, "judge": 3, DEDUP: 2}
    assert sorted(r.category for r in curated.rejected) == ["duplicate", "quote not in source"]


def test_the_judge_sees_each_pair_and_its_verdict_rejects():
    drafts = [draft("When does the Alder Reading Room open?", "At 8:30 on weekdays.", "opens at 8:30 on weekdays")]
    seen = []
    curated = curate(drafts, {SOURCE.chunk.id: SOURCE}, CFG, judge=lambda pair: seen.append(pair) or "judge: not supported")
    assert len(seen) == 1 and not curated.accepted
    assert curated.rejected[0].stage == "judge"
