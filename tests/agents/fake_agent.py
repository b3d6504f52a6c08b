"""FakeAnswerAgent: the smallest real agent, for tests that drive the ladder through a provider."""

from __future__ import annotations

from pydantic import BaseModel

from docpipe.agents.base import BaseAgent


class Answer(BaseModel):
    answer: str


class FakeAnswerAgent(BaseAgent[str, Answer]):
    response_model = Answer
    system_prompt = "Answer in JSON."

    def build_prompt(self, item: str) -> str:
        return item

    def heuristic(self, item: str) -> Answer:
        return Answer(answer="unknown")
