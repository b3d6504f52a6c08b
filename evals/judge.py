"""The optional LLM judge (`docpipe eval --judge MODEL`): a 1-5 rubric that sees the question, the reference
answer and the source quote, at temperature 0, through the LLM gateway (cached, rate-limited, retried)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from docpipe.agents.base import BaseAgent

RUBRIC = """You grade an answer to a question about a user's documents, against a reference answer and the source passage.
5: states the reference's facts correctly and nothing false. 4: the key facts right, a detail missing or vague.
3: partly right, or right with an unsupported addition. 2: mostly wrong or off-topic, with a grain of truth.
1: wrong, invented, or a refusal when the reference gives an answer.
When the reference says "The documents do not say.", 5 is a refusal of that kind and 1 an invented answer.
Reply with JSON only: {"score": 1-5, "reason": "..."}"""


@dataclass(frozen=True)
class JudgeTask:
    question: str
    reference: str
    quote: str | None
    answer: str
    key_facts: float  # the metric's share, for the heuristic tier


class JudgeScore(BaseModel):
    model_config = ConfigDict(extra="ignore")

    score: Annotated[int, Field(ge=1, le=5, description="1 (wrong or invented) to 5 (the reference's facts, nothing false).")]
    reason: Annotated[str, Field(max_length=600, description="One sentence: why this score.")] = ""


class AnswerJudge(BaseAgent[JudgeTask, JudgeScore]):
    """Grades one answer; without a usable reply it falls back to the key-facts share mapped onto 1-5."""

    response_model = JudgeScore
    system_prompt = RUBRIC

    def build_prompt(self, task: JudgeTask) -> str:
        source = f"\nSource passage:\n<<<\n{task.quote}\n>>>" if task.quote else ""
        return f"Question:\n<<<\n{task.question}\n>>>\nReference answer:\n<<<\n{task.reference}\n>>>{source}\nAnswer to grade:\n<<<\n{task.answer}\n>>>"

    def heuristic(self, task: JudgeTask) -> JudgeScore:
        return JudgeScore(score=1 + round(4 * task.key_facts), reason=f"heuristic: {task.key_facts:.0%} of the reference's key facts")
