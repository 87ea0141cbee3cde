"""Serves the iris classifier that train.py pickled into model.pkl (kept in Git LFS)."""

import pickle
from pathlib import Path

MODEL_PATH = Path(__file__).resolve().parent / 'model.pkl'
LFS_POINTER_START = b'version https://git-lfs'


class IrisClassifier:
    """Predicts the species of an iris flower from its four measurements."""

    def __init__(self):
        data = MODEL_PATH.read_bytes()
        if data.startswith(LFS_POINTER_START):
            raise RuntimeError(f'{MODEL_PATH.name} is a Git LFS pointer, not the model: '
                               'install git-lfs and fetch the LFS objects (git lfs pull)')
        self.model = pickle.loads(data)

    def perform(self, features: list[float]) -> dict:
        """
        Predict the species of one flower.
        :param features: sepal length, sepal width, petal length and petal width, in cm.
        :return: The predicted species and the probability of each species.
        """
        expected = len(self.model.feature_names_)
        if len(features) != expected:
            raise ValueError(f'give {expected} features ({", ".join(self.model.feature_names_)}), '
                             f'not {len(features)}')
        probabilities = self.model.predict_proba([[float(value) for value in features]])[0]
        best = int(probabilities.argmax())
        return {
            'species': self.model.target_names_[best],
            'probabilities': {name: round(float(p), 4)
                              for name, p in zip(self.model.target_names_, probabilities, strict=True)},
        }

    def docs_input_example(self) -> dict:
        return {'features': [5.1, 3.5, 1.4, 0.2]}
