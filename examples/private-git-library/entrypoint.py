import teamlib


class RobustMean:
    def perform(self, values: list[float]) -> float:
        """The mean of ``values`` without their smallest and largest, by the team's own library."""
        return teamlib.trimmed_mean(values)

    def docs_input_example(self) -> dict:
        return {"values": [1.0, 2.0, 3.0, 4.0, 100.0]}
