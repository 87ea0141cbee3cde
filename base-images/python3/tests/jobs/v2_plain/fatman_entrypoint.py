"""A 2.x job as most are written: a plain class named JobEntrypoint, beside a helper class."""

import dataclasses


@dataclasses.dataclass
class Point:
    x: float
    y: float


class JobEntrypoint:
    def perform(self, x: float, y: float) -> float:
        return Point(x, y).x + Point(x, y).y

    def docs_input_example(self):
        return {"x": 1, "y": 2}
