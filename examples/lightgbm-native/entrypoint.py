"""Serves a LightGBM model (model.txt, written by train.py): the price of a flat.

lightgbm's native library needs OpenMP's runtime (libgomp.so.1) at import, which the slim Python
images lack: fatman.yaml installs it with ``system_dependencies: [libgomp1]``.
"""

from pathlib import Path

import lightgbm as lgb

MODEL_PATH = Path(__file__).resolve().parent / 'model.txt'


class FlatPrice:
    """Predicts the price of a flat (in thousands) with a gradient-boosted tree model."""

    def __init__(self):
        self.booster = lgb.Booster(model_file=str(MODEL_PATH))
        self.features = self.booster.feature_name()

    def perform(self, area_m2: float, rooms: int, age_years: float) -> float:
        """
        Predict the price of one flat.
        :param area_m2: Floor area in square metres.
        :param rooms: Number of rooms.
        :param age_years: Age of the building in years.
        :return: The predicted price, in thousands, rounded to one decimal.
        """
        row = [[float(area_m2), float(rooms), float(age_years)]]
        return round(float(self.booster.predict(row, num_threads=1)[0]), 1)

    def importance(self) -> dict[str, int]:
        """
        How often the model splits on each feature.
        :return: Split counts by feature name.
        """
        counts = self.booster.feature_importance(importance_type='split')
        return {name: int(count) for name, count in zip(self.features, counts, strict=True)}

    def auxiliary_endpoints(self):
        return {'/importance': self.importance}

    def docs_input_examples(self) -> dict:
        return {
            '/perform': {'area_m2': 72, 'rooms': 3, 'age_years': 15},
            '/importance': {},
        }
