"""A Racetrack 2.x job reading plain runtime variables and a secret one it never reveals."""

import hashlib
import os


class JobEntrypoint:
    """Greets with its runtime_env and shows whether its API key (a runtime secret) is configured."""

    def perform(self, name: str) -> dict:
        """
        Greet someone.
        :param name: Who to greet.
        :return: The greeting, and whether the API key is set (with a short fingerprint to tell
            keys apart, never the key itself).
        """
        api_key = os.environ.get('DEMO_API_KEY', '')
        greeting = os.environ.get('GREETING', 'Hi')
        return {
            'greeting': f"{greeting}, {name}{os.environ.get('GREETING_PUNCTUATION', '')}",
            'api_key_configured': bool(api_key),
            'api_key_fingerprint': hashlib.sha256(api_key.encode()).hexdigest()[:8] if api_key else None,
        }

    def docs_input_example(self) -> dict:
        return {'name': 'racetrack'}
