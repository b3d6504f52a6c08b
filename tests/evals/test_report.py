"""The evaluation report: the verdict and what to trust open report.md; report.html is one self-contained page
(no scripts, no external URLs, plots embedded) that escapes text from documents and answers, and a real browser
draws it as a page a person can read."""

from __future__ import annotations

import base64
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docpipe.contracts import (
    AnswerScore,
    Estimate,
    EvalQuestion,
    EvalRecord,
    EvalReport,
    LossPoint,
    PairedComparison,
    SetScores,
    StageResult,
    TrainResult,
    TrainSettings,
)
from evals import EvalError
from evals.report import render_html, render_markdown

HOSTILE = "<script>alert(1)</script> what does | the table | say?"
HOSTILE_ANSWER = '<img src=x onerror="alert(2)"> [click](javascript:alert(3))'
TRUST = [
    "Trust it to recall facts it was trained on, asked in the trained words.",
    "Do not trust it on facts asked in new words: it gets 28% of those right.",
    "Do not trust its citations without checking them.",
]
REASONS = ["Seen-set accuracy exceeds rephrased-set accuracy by 0.45 (threshold 0.25).", "A third of the cited documents are wrong."]
DOCUMENTS = ["manual/install.pdf", "manual/safety.pdf", "notes/$cost report.md", "faq.html", "policies/leave.docx"]
SET_SIZES = {"seen": 30, "rephrased": 25, "unseen": 24, "out_of_corpus": 12, "user": 5}
MIN_QUESTIONS = 20
SECTIONS = [
    "Loss curves",
    "Scores per question set",
    "Citations",
    "Abstention",
    "Accuracy per document",
    "Model against model",
    "Worst answers",
]


# --- a realistic evaluation, built in code -----------------------------------------------------------------------


def _answer(rng: random.Random, label: str, question: EvalQuestion) -> AnswerScore:
    skill = {"base": 0.2, "tuned": 0.75, "tuned-q8_0": 0.7}[label] * (0.45 if question.set in ("rephrased", "unseen") else 1)
    if question.set == "out_of_corpus":
        abstained = rng.random() < (0.3 if label == "base" else 0.6)
        text = "The documents do not say." if abstained else f"It is {rng.randint(2, 99)} days, as the policy says."
        return AnswerScore(
            answer=text,
            f1=1.0 if abstained else 0.05,
            key_facts=1.0 if abstained else 0.0,
            abstained=abstained,
            cited=False,
            correct=abstained,
        )
    key_facts = 0.0 if question.question == HOSTILE else round(min(1.0, max(0.0, rng.gauss(skill, 0.25))), 2)
    abstained = rng.random() < 0.08
    cited = not abstained and rng.random() < (0.3 if label == "base" else 0.85)
    exists = cited and rng.random() < 0.9
    right = exists and rng.random() < 0.75
    text = HOSTILE_ANSWER if question.question == HOSTILE else f"The answer is in section {rng.randint(1, 9)}.\nSource: {question.path}"
    return AnswerScore(
        answer="The documents do not say." if abstained else text,
        f1=round(key_facts * 0.8, 2),
        key_facts=0.0 if abstained else key_facts,
        abstained=abstained,
        cited=cited,
        cited_path=question.path if right else ("other.pdf" if cited else None),
        cited_page=3 if cited else None,
        citation_exists=exists if cited else None,
        citation_right_document=right if cited else None,
        citation_supports=(right and rng.random() < 0.8) if cited else None,
        correct=not abstained and key_facts >= 0.5,
    )


def _question(rng: random.Random, set_name: str, index: int) -> EvalQuestion:
    if set_name == "out_of_corpus":
        return EvalQuestion(
            id=f"{set_name}-{index}",
            set=set_name,
            question=f"How many days of leave do astronauts get ({index})?",
            reference="The documents do not say.",
        )
    path = DOCUMENTS[index % len(DOCUMENTS)]
    text = HOSTILE if (set_name, index) == ("seen", 0) else f"What does {path} say about step {index} of the {set_name} procedure?"
    return EvalQuestion(
        id=f"{set_name}-{index}",
        set=set_name,
        question=text,
        reference=f"Step {index} needs the torque wrench set to {10 + index} Nm.",
        path=path,
        page=index % 7 + 1 if path.endswith(".pdf") else None,
        quote=f"Set the torque wrench to {10 + index} Nm before step {index}." if index % 4 else None,
    )


def build_records(models: tuple[str, ...] = ("base", "tuned", "tuned-q8_0")) -> list[EvalRecord]:
    rng = random.Random(7)
    records = []
    for set_name, size in SET_SIZES.items():
        for index in range(size):
            question = _question(rng, set_name, index)
            records.append(EvalRecord(question=question, answers={label: _answer(rng, label, question) for label in models}))
    return records


def _mean(values: list[float], too_small: bool, floor: float = 0.0) -> Estimate:
    n = len(values)
    if n == 0:
        return Estimate(value=None, low=None, high=None, n=0, too_small=True)
    mean = sum(values) / n
    half = 1.96 * (sum((v - mean) ** 2 for v in values) / max(n - 1, 1) / n) ** 0.5
    return Estimate(value=mean, low=max(floor, mean - half), high=min(1.0, mean + half), n=n, too_small=too_small)


def _set_scores(answers: list[AnswerScore]) -> SetScores:
    small = len(answers) < MIN_QUESTIONS
    cited = [a for a in answers if a.cited]

    def share(values: list[bool | None]) -> Estimate:
        return _mean([float(bool(v)) for v in values], small)

    return SetScores(
        correct=share([a.correct for a in answers]),
        f1=_mean([a.f1 for a in answers], small),
        key_facts=_mean([a.key_facts for a in answers], small),
        cited=share([a.cited for a in answers]),
        citation_exists=share([a.citation_exists for a in cited]),
        citation_right_document=share([a.citation_right_document for a in cited]),
        citation_supports=share([a.citation_supports for a in cited]),
        abstained=share([a.abstained for a in answers]),
        regurgitated=share([a.regurgitated is not None for a in answers]),
    )


def _comparison(records: list[EvalRecord], set_name: str, a: str, b: str) -> PairedComparison:
    pairs = [(r.question.id, r.answers[a].correct, r.answers[b].correct) for r in records if r.question.set == set_name]
    differences = [float(y) - float(x) for _, x, y in pairs]
    return PairedComparison(
        a=a,
        b=b,
        measure=f"correct, {set_name}",
        difference=_mean(differences, len(pairs) < MIN_QUESTIONS, floor=-1.0),
        p_value=0.0004 if set_name == "seen" else 0.21,
        improvements=[i for i, x, y in pairs if y and not x],
        regressions=[i for i, x, y in pairs if x and not y],
    )


def build_report(records: list[EvalRecord], verdict: str = "overfit") -> EvalReport:
    labels = list(records[0].answers)
    sets = {label: {s: _set_scores([r.answers[label] for r in records if r.question.set == s]) for s in SET_SIZES} for label in labels}
    # a value the evaluation could not compute: the report must say n/a, not 0
    sets["base"]["user"] = sets["base"]["user"].model_copy(update={"f1": Estimate(value=None, low=None, high=None, n=5, too_small=True)})
    comparisons = [_comparison(records, s, "base", "tuned") for s in ("seen", "rephrased", "unseen")]
    if "tuned-q8_0" in labels:
        comparisons.append(_comparison(records, "unseen", "tuned", "tuned-q8_0").model_copy(update={"p_value": None}))
    models = {"base": "HuggingFaceTB/SmolLM2-135M-Instruct", "tuned": "run 20250101-120000-abc123", "tuned-q8_0": "export/model-q8_0.gguf"}
    return EvalReport(
        run_id="20250101-120000-abc123",
        verdict=verdict,
        reasons=REASONS,
        trust=TRUST,
        engine="llama.cpp on F16 GGUFs",
        models={label: what for label, what in models.items() if label in labels},
        sets=sets,
        comparisons=comparisons,
        loss_gap=0.62,
        questions=dict(SET_SIZES),
        seconds=412.5,
        docpipe_version="0.4.0",
    )


def _losses(steps: int, start: float, end: float, every: int = 1) -> list[LossPoint]:
    return [LossPoint(step=s, epoch=s / 20, loss=start + (end - start) * (s / steps) ** 0.5) for s in range(every, steps + 1, every)]


def build_trained() -> TrainResult:
    sft = StageResult(
        stage="sft",
        backend="hf on cpu",
        adapter="runs/x/adapter",
        steps=60,
        epochs=3.0,
        train_loss=_losses(60, 2.4, 0.35),
        eval_loss=_losses(60, 2.5, 1.1, every=10)[:4] + [LossPoint(step=50, epoch=2.5, loss=1.2), LossPoint(step=60, epoch=3, loss=1.3)],
        best_eval_loss=0.97,
        best_step=40,
        stopped_early=True,
    )
    dpo = StageResult(stage="dpo", backend="hf on cpu", adapter="runs/x/dpo", steps=12, epochs=1.0, train_loss=_losses(12, 0.69, 0.41))
    settings = TrainSettings(
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct", backend="hf", device="cpu", epochs=3, batch_size=4, learning_rate=2e-4,
        lora_rank=16, lora_alpha=32, lora_dropout=0.05, qlora=False, max_seq_tokens=1024, evals_per_epoch=2, eval_max_pairs=64,
        early_stopping_patience=2, checkpoint_minutes=10, threads=2, seed=0, dpo=True, dpo_beta=0.1, dpo_learning_rate=5e-6,
        dpo_epochs=1, base_path="/models/smollm2",
    )  # fmt: skip
    return TrainResult(
        run_id="20250101-120000-abc123", backend="hf", device="cpu", dispatch="no CUDA GPU", base_model=settings.base_model,
        base_path=settings.base_path, base_source="hugging face cache", chat_template="chatml", adapter="runs/x/dpo",
        dataset_sha256="0" * 64, sft=sft, dpo=dpo, threads=2, wall_s=900, peak_memory_mb=2100, config=settings, docpipe_version="0.4.0",
    )  # fmt: skip


@pytest.fixture(scope="module")
def evaluation() -> tuple[EvalReport, list[EvalRecord], TrainResult]:
    records = build_records()
    return build_report(records), records, build_trained()


@pytest.fixture(scope="module")
def page(evaluation) -> str:
    return render_html(*evaluation)


# --- markdown ------------------------------------------------------------------------------------------------------


def test_markdown_opens_with_the_verdict_and_what_to_trust(evaluation):
    report, _, _ = evaluation
    markdown = render_markdown(*evaluation)
    first_screen = "\n".join(markdown.splitlines()[:14])
    assert "Verdict: OVERFIT" in first_screen
    for line in TRUST + REASONS:
        assert line in first_screen, line
    assert first_screen.index("Verdict") < first_screen.index(TRUST[0]) < first_screen.index(REASONS[0])


def test_markdown_has_every_section_in_order_with_intervals_and_n(evaluation):
    markdown = render_markdown(*evaluation)
    positions = [markdown.index(f"## {title}") for title in SECTIONS]
    assert positions == sorted(positions)
    assert re.search(r"\d+% \[\d+%–\d+%\], n=\d+", markdown)  # a share with its interval and n
    assert "n=5, too small" in markdown and "Too small to say anything" in markdown
    assert "| user | base | " in markdown and "| n/a |" in markdown  # the None token F1
    assert "IMPROVEMENTS of tuned over base" in markdown and "REGRESSIONS of tuned over base" in markdown
    assert "What does manual/install.pdf say about step" in markdown  # question text, not only ids
    assert "n/a (no differences)" in markdown  # the comparison whose p is None


def test_markdown_neutralises_hostile_text(evaluation):
    markdown = render_markdown(*evaluation)
    assert not re.search(r"(?<!\\)<(script|img|/script)", markdown)  # every tag's '<' is backslash-escaped
    assert r"\<script\>alert(1)\</script\>" in markdown
    assert "](javascript:" not in markdown  # no live link
    assert r"what does \| the table \| say?" in markdown  # its pipes would split a table row


def test_markdown_without_training_result_or_records_says_na():
    records = build_records()
    markdown = render_markdown(build_report(records), [], None)
    assert "n/a: the run's training result was not given" in markdown
    assert "n/a: no answers of the tuned model" in markdown
    assert "n/a: no answerable question names its document" in markdown
    assert "n/a: no out-of-corpus questions" in markdown
    assert "training result was not given" in render_html(build_report(records), [], None)


def test_markdown_needs_no_matplotlib_and_html_says_what_to_install(evaluation, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    assert "Verdict: OVERFIT" in render_markdown(*evaluation)
    with pytest.raises(EvalError, match="matplotlib") as caught:
        render_html(*evaluation)
    assert "docpipe[eval]" in caught.value.one_line()


def test_importing_the_report_imports_nothing_heavy():
    code = "import sys, evals.report; heavy = {'matplotlib', 'numpy', 'PIL'} & set(sys.modules); assert not heavy, heavy"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


# --- HTML ----------------------------------------------------------------------------------------------------------


def test_html_is_self_contained(page):
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "@import" not in page and "url(" not in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4  # loss curves, scores, citation funnel, documents
    assert all(base64.b64decode(image).startswith(b"\x89PNG\r\n\x1a\n") for image in images)


def test_html_escapes_text_from_documents_and_answers(page):
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page


def test_html_puts_the_coloured_verdict_first_and_sections_in_order(page):
    verdict = page.index('class="verdict"')
    assert "--verdict: #cf222e" in page  # overfit is red
    positions = [page.index(f"<h2>{title}") for title in SECTIONS]
    assert verdict < page.index(TRUST[0]) < positions[0] and positions == sorted(positions)


@pytest.mark.parametrize("verdict, colour", [("ok", "#1a7f37"), ("insufficient-data", "#57606a"), ("over-refusing", "#bc4c00")])
def test_html_colours_each_verdict(verdict, colour):
    records = build_records(("base", "tuned"))
    assert f"--verdict: {colour}" in render_html(build_report(records, verdict), records, None)


def _chromium() -> str | None:
    return next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None)


def test_html_renders_in_headless_chromium(page, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (scripts/setup.sh installs Debian's chromium)")
    report_file, screenshot = tmp_path / "report.html", tmp_path / "screenshot.png"
    report_file.write_text(page, encoding="utf-8")
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}"]
    command += [f"--screenshot={screenshot}", "--window-size=1280,2000", report_file.as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=180)
    _assert_not_blank(screenshot)


def _assert_not_blank(screenshot: Path) -> None:
    from PIL import Image

    with Image.open(screenshot) as image:
        rgb = image.convert("RGB")
    assert rgb.size == (1280, 2000)
    colours = rgb.getcolors(maxcolors=1 << 24) or []
    assert len(colours) > 50, f"only {len(colours)} colours: the page drew almost nothing"
    non_white = sum(count for count, (r, g, b) in colours if min(r, g, b) < 235) / (1280 * 2000)
    assert non_white > 0.1, f"only {non_white:.0%} of the page is not white"
    first_screen = rgb.crop((0, 0, 1280, 400)).getcolors(maxcolors=1 << 24) or []
    reds = sum(count for count, (r, g, b) in first_screen if r > 180 and g < 80 and b < 80)
    assert reds > 1000, "the red overfit banner is not on the first screen"
