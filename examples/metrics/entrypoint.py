"""A job exporting custom Prometheus metrics through ``metrics()``."""

import time


class LinearModel:
    """y = slope * x + intercept, with metrics describing the model."""

    def __init__(self):
        self.coefficients = {'slope': 2.0, 'intercept': 0.5}
        self.loaded_at = time.time()

    def perform(self, x: float) -> float:
        """
        Predict y for x.
        :param x: The input value.
        :return: slope * x + intercept.
        """
        return self.coefficients['slope'] * x + self.coefficients['intercept']

    def docs_input_example(self) -> dict[str, float]:
        return {'x': 3}

    def metrics(self) -> list[dict]:
        """Values read at every scrape of /metrics; labels tell the samples of one metric apart."""
        return [
            {
                'name': 'example_model_coefficient',
                'description': 'Coefficients of the linear model',
                'value': value,
                'labels': {'coefficient': name},
            }
            for name, value in self.coefficients.items()
        ] + [
            {
                'name': 'example_model_age_seconds',
                'description': 'Seconds since the model was loaded by this worker',
                'value': time.time() - self.loaded_at,
            },
        ]
