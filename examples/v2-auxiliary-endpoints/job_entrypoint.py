"""A job with auxiliary endpoints: besides ``/api/v1/perform`` it answers ``/api/v1/explain`` and
``/api/v1/stats``, and documents an example input for each of them."""

from collections.abc import Callable


class WeightedSum:
    """Adds numbers and explains how much each of them contributed."""

    def perform(self, numbers: list[float]) -> float:
        """
        Return the sum of the numbers.
        :param numbers: The numbers to add.
        :return: Their sum.
        """
        return sum(numbers)

    def auxiliary_endpoints(self) -> dict[str, Callable]:
        """Dict of custom endpoint paths (besides "/perform") handled by Entrypoint methods"""
        return {
            '/explain': self.explain,
            '/stats': self.stats,
        }

    def explain(self, x: float, y: float) -> dict[str, float]:
        """
        Explain feature importance of a model result.
        :param x: First element to add.
        :param y: Second element to add.
        :return: Dict of feature importance (each element's share of the sum).
        """
        result = self.perform([x, y])
        return {'x_importance': x / result, 'y_importance': y / result}

    def stats(self, numbers: list[float]) -> dict[str, float]:
        """
        Describe a list of numbers.
        :param numbers: At least one number.
        :return: Their count, minimum, maximum and mean.
        """
        if not numbers:
            raise ValueError('give at least one number')
        return {
            'count': len(numbers),
            'min': min(numbers),
            'max': max(numbers),
            'mean': sum(numbers) / len(numbers),
        }

    def docs_input_examples(self) -> dict[str, dict]:
        """Return mapping of Fatman's endpoints to corresponding exemplary inputs."""
        return {
            '/perform': {'numbers': [40, 2]},
            '/explain': {'x': 1, 'y': 3},
            '/stats': {'numbers': [1, 2, 3, 6]},
        }
