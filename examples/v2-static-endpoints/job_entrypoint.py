"""A Racetrack 2.x job serving some of its files as static endpoints, next to a tiny model."""

import json


class JobEntrypoint:
    """Classifies a score against the threshold published in its model card."""

    def __init__(self):
        # Relative paths: the working directory is the job's root (git.directory).
        with open('model-card.json') as f:
            self.card = json.load(f)

    def perform(self, score: float) -> str:
        """
        Classify a score.
        :param score: A score between 0 and 1.
        :return: "positive" when the score reaches the model's threshold, else "negative".
        """
        return 'positive' if score >= self.card['threshold'] else 'negative'

    def docs_input_example(self) -> dict:
        return {'score': 0.8}

    def static_endpoints(self) -> dict:
        """Endpoint paths (GET /api/v1<path>) mapped to the files served there."""
        return {
            # (file, mimetype): the type given explicitly.
            '/manifest': ('job.yaml', 'application/x-yaml'),
            # A file alone: its mimetype is guessed from the name (application/json).
            '/model-card': 'model-card.json',
            # A folder: every file under it, recursively (index.html for the folder itself).
            '/assets': 'assets',
        }
