"""A Racetrack 2.x job exporting custom Prometheus metrics through ``metrics()``."""

import threading


class JobEntrypoint:
    """y = slope * x + intercept, with metrics describing the model and its use."""

    def __init__(self):
        self.coefficients = {'slope': 2.0, 'intercept': 0.5}
        self.predictions = 0
        self.last_x = 0.0
        self.lock = threading.Lock()

    def perform(self, x: float) -> float:
        """
        Predict y for x.
        :param x: The input value.
        :return: slope * x + intercept.
        """
        with self.lock:
            self.predictions += 1
            self.last_x = x
        return self.coefficients['slope'] * x + self.coefficients['intercept']

    def docs_input_example(self) -> dict[str, float]:
        return {'x': 3}

    def metrics(self) -> list[dict]:
        """Read at every scrape of /metrics, each one a gauge; labels tell samples of one metric apart."""
        with self.lock:
            predictions, last_x = self.predictions, self.last_x
        return [
            {
                'name': 'example_v2_model_coefficient',
                'description': 'Coefficients of the linear model',
                'value': value,
                'labels': {'coefficient': name},
            }
            for name, value in self.coefficients.items()
        ] + [
            {
                'name': 'example_v2_predictions',
                'description': 'Predictions made by this worker since it started',
                'value': predictions,
            },
            {'name': 'example_v2_last_input', 'value': last_x},  # description is optional
        ]
