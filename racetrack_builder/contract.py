"""The image contract: what the python3 base image provides and what job images rely on.

One place for the values that the job Dockerfile template, the renderer, the build and the smoke
test share with ``base-images/python3/Dockerfile`` (docs/architecture.md, "The image contract",
describes each). The template receives this module as ``contract``; a test checks that the base
image's Dockerfile agrees with it.
"""

from __future__ import annotations

BASE_IMAGE_REPOSITORY = "racetrack/python3"

# The Pythons a job may choose (python.python_version): the wrapper supports each, and each has a
# base image of its own. Strings, as the manifest writes them ("3.10" is not the number 3.1).
PYTHON_VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
DEFAULT_PYTHON_VERSION = "3.11"

# The port the wrapper listens on inside the container (FATMAN_PORT in the base image).
PORT = 7000
# The non-root user jobs run as; a fixed id so file ownership in layers and volumes is predictable.
USER = "fatman"
UID = 10001
GID = 10001

# The job's files (the contents of git.directory): the working directory of the running job.
JOB_ROOT = "/src/fatman"
# The wrapper and its dependencies, in a venv of their own.
WRAPPER_VENV = "/opt/fatman/venv"
WRAPPER_PYTHON = f"{WRAPPER_VENV}/bin/python"
# The wrapper's console script (see base-images/python3/pyproject.toml).
WRAPPER_SCRIPT = f"{WRAPPER_VENV}/bin/fatman-wrapper"
# Whether the wrapper's server still imports with the job's packages first on sys.path; the install
# step runs it (base-images/build-tools/racetrack_install.py).
SERVER_CHECK_COMMAND = [WRAPPER_SCRIPT, "check-server"]
# The job's own packages: site-packages ahead of the venv on PYTHONPATH, scripts on PATH.
JOB_PACKAGES = "/opt/fatman/job"
JOB_SITE_PACKAGES = f"{JOB_PACKAGES}/site-packages"
JOB_BIN = f"{JOB_PACKAGES}/bin"

# Where Debian-based images (the official python images included) keep the trusted CA bundle.
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# A CA bundle dropped into a build context under this name is trusted by pip in the builder stages
# (base and job images alike) and never reaches a final stage.
CA_BUNDLE_FILE = "ca-bundle.pem"
# Build argument carrying extra CA certificates to apt in the final stage (see certs.py for why).
CA_BUNDLE_ARG = "RACETRACK_CA_BUNDLE"
# The install step's last line when it fails: this, then its diagnosis as JSON
# (base-images/build-tools/racetrack_install.py writes it, failures.install_failure reads it).
DIAGNOSIS_MARKER = "::racetrack-diagnosis::"
# The install step's script, in the tools' folder (base-images/build-tools/racetrack_install.py).
INSTALL_SCRIPT_NAME = "racetrack_install.py"
