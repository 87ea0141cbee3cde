"""Train the flat-price model and save it as model.txt, LightGBM's own text format.

    pip install -r requirements.txt && python train.py

The data is synthetic and seeded, and training is single-threaded and deterministic, so the same
versions (requirements.txt) always write the same model.txt.
"""

from pathlib import Path

import lightgbm as lgb
import numpy as np

MODEL_PATH = Path(__file__).resolve().parent / 'model.txt'
FEATURES = ['area_m2', 'rooms', 'age_years']


def flats(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Flats with a price (in thousands) that grows with area and rooms and falls with age."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(25, 160, count)
    rooms = np.clip(np.round(area / 28 + rng.normal(0, 0.7, count)), 1, 7)
    age = rng.uniform(0, 90, count)
    price = 2.4 * area + 15 * rooms - 0.9 * age + rng.normal(0, 12, count) + 60
    return np.column_stack([area, rooms, age]), price


def train() -> lgb.Booster:
    features, price = flats(2000)
    params = {
        'objective': 'regression', 'learning_rate': 0.1, 'num_leaves': 8, 'min_data_in_leaf': 20,
        'num_threads': 1, 'deterministic': True, 'seed': 7, 'verbose': -1,
    }
    data = lgb.Dataset(features, price, feature_name=FEATURES, params={'verbose': -1})
    return lgb.train(params, data, num_boost_round=60)


if __name__ == '__main__':
    booster = train()
    booster.save_model(str(MODEL_PATH))
    check, expected = flats(200, seed=1)
    error = np.abs(booster.predict(check) - expected).mean()
    print(f'mean absolute error {error:.1f} (thousands); wrote {MODEL_PATH.name} '
          f'({MODEL_PATH.stat().st_size} bytes)')
