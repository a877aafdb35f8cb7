"""The command text does not follow the grammar: the answer is the problem and the command's usage."""

from __future__ import annotations

from bot.errors import OpsbotError


class UsageError(OpsbotError):
    """The command text does not follow the grammar; the answer is the command's usage."""

    def __init__(self, problem: str, usage: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.usage = usage

    def operator_text(self) -> str:
        return f":warning: {self.problem}\n{self.usage}"
