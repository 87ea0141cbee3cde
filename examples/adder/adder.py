"""The smallest Racetrack job: a class whose ``perform`` adds two numbers."""


class Adder:
    def perform(self, x: float, y: float) -> float:
        """
        Return the sum of two numbers.
        :param x: The first number.
        :param y: The second number.
        :return: The sum of x and y.
        """
        return x + y

    def docs_input_example(self) -> dict:
        """An input that gives a result, shown in Swagger UI and sent by `racetrack-build test`."""
        return {'x': 40, 'y': 2}
