from typing import Callable, Dict, List


class AuxiliaryEntrypoint:
    def perform(self, numbers: List[float]) -> float:
        """Sum the numbers.

        :param numbers: Numbers to add.
        :return: Their sum.
        """
        return sum(numbers)

    def auxiliary_endpoints(self) -> Dict[str, Callable]:
        return {
            "/explain": self.explain,
            "/reports/latest": self.latest_report,
            "/boom": self.boom,
        }

    def explain(self, x: float, y: float) -> Dict[str, float]:
        """
        Explain feature importance of a model result.
        :param x: First element to add.
        :param y: Second element to add.
        :return: Dict of feature importance.
        """
        result = x + y
        return {"x_importance": x / result, "y_importance": y / result}

    def latest_report(self) -> Dict[str, str]:
        """The latest report."""
        return {"report": "all good"}

    def boom(self, reason: str = "kaboom") -> None:
        """Always fails."""
        raise ValueError(f"exploded: {reason}")

    def docs_input_examples(self) -> Dict[str, Dict]:
        return {
            "/perform": {"numbers": [40, 2]},
            "/explain": {"x": 1, "y": 2},
        }
