"""A job using a package from a private index (installed with secret build credentials) and a
secret runtime variable it never reveals."""

import hashlib
import os

from racetrack_private_demo import secret_greeting


class PrivateGreeter:
    """Greets with the private package and shows whether its API key is configured."""

    def perform(self, name: str) -> dict:
        """
        Greet someone with the private package.
        :param name: Who to greet.
        :return: The greeting, and whether the API key is set (with a short fingerprint to tell
            keys apart, never the key itself).
        """
        api_key = os.environ.get('DEMO_API_KEY', '')
        return {
            'greeting': secret_greeting(name) + os.environ.get('GREETING_PUNCTUATION', ''),
            'api_key_configured': bool(api_key),
            'api_key_fingerprint': hashlib.sha256(api_key.encode()).hexdigest()[:8] if api_key else None,
        }

    def docs_input_example(self) -> dict:
        return {'name': 'racetrack'}
