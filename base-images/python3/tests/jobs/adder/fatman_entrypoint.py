from typing import Dict


class AdderEntrypoint:
    """Multiplies and adds numbers."""

    def perform(self, x: float, y: float = 1.0) -> float:
        """
        Return the product of two numbers.
        :param x: The first number.
        :param y: The second number.
        :return: The product of x and y.
        """
        return x * y

    def docs_input_example(self) -> Dict[str, float]:
        return {"x": 20, "y": 5}
