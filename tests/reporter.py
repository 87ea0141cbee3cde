"""A reporter that records what the library reports, for tests to assert on."""

from __future__ import annotations


class Recorded:
    """Everything reported, by kind; ``messages`` holds progress and warnings in order, warnings
    as ``warning: ...``."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.warnings: list[str] = []
        self.phases: list[str] = []
        self.steps: list[tuple[int, int, str]] = []
        self.stages: list[str] = []  # the stage of each step ("" for the last, unnamed one)
        self.logs: list[str] = []

    def progress(self, text: str) -> None:
        self.messages.append(text)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self.messages.append(f"warning: {text}")

    def phase(self, title: str) -> None:
        self.phases.append(title)

    def step(self, number: int, total: int, instruction: str, stage: str = "") -> None:
        self.steps.append((number, total, instruction))
        self.stages.append(stage)

    def log(self, line: str) -> None:
        self.logs.append(line)
