"""A Racetrack 2.x job in its usual shape: a class named ``JobEntrypoint`` whose ``perform`` does the work."""


class JobEntrypoint:
    def perform(self, numbers: list[float]) -> float:
        """
        Return the product of the numbers.
        :param numbers: The numbers to multiply.
        :return: Their product (1 for no numbers).
        """
        product = 1.0
        for number in numbers:
            product *= number
        return product

    def docs_input_example(self) -> dict:
        """An input that gives a result, shown in Swagger UI and sent by `racetrack-build test`."""
        return {'numbers': [6, 7]}
