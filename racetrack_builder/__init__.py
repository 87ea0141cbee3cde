"""racetrack-build: turn a Python class and a fatman.yaml into a Docker image serving it over HTTP."""

__version__ = "0.1.0"
