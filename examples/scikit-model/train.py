"""Train the iris classifier and pickle it into model.pkl, next to this file.

    pip install -r requirements.txt && python train.py

Deterministic: the same versions (requirements.txt) give the same model and the same predictions.
Keep the pickle in Git LFS in the job's repository (see README.md); commit it after retraining.
"""

import pickle
from pathlib import Path

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MODEL_PATH = Path(__file__).resolve().parent / 'model.pkl'


def train():
    iris = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=0.25, random_state=42, stratify=iris.target)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=42))
    model.fit(x_train, y_train)
    # What perform() returns names the species and the features, so they travel with the model.
    model.target_names_ = [str(name) for name in iris.target_names]
    model.feature_names_ = [str(name) for name in iris.feature_names]
    return model, model.score(x_test, y_test)


if __name__ == '__main__':
    trained, accuracy = train()
    with MODEL_PATH.open('wb') as file:
        pickle.dump(trained, file, protocol=5)
    print(f'test accuracy {accuracy:.3f}; wrote {MODEL_PATH.name} ({MODEL_PATH.stat().st_size} bytes)')
