"""A job that runs ``jq`` (installed from Debian through system_dependencies) on JSON documents."""

import json
import shutil
import subprocess
from typing import Any

# A filter that never ends (`repeat(1)`) must not hold a worker forever.
JQ_TIMEOUT_SECONDS = 10


class JqQuery:
    """Applies a jq filter to a JSON document."""

    def __init__(self):
        self.jq = shutil.which('jq')
        if self.jq is None:
            raise RuntimeError('jq is not installed: add it to system_dependencies in fatman.yaml')

    def perform(self, document: Any, query: str = '.') -> Any:
        """
        Run a jq filter on a JSON document.
        :param document: Any JSON value.
        :param query: A jq filter, e.g. "[.items[].price] | add".
        :return: The filter's output: one value, or a list when it yields several.
        """
        process = subprocess.run(
            [self.jq, '--compact-output', query],
            input=json.dumps(document), capture_output=True, text=True,
            timeout=JQ_TIMEOUT_SECONDS, check=False,
        )
        if process.returncode != 0:
            raise ValueError(f'jq failed: {process.stderr.strip()}')
        outputs = [json.loads(line) for line in process.stdout.splitlines() if line.strip()]
        return outputs[0] if len(outputs) == 1 else outputs

    def version(self) -> str:
        """
        The version of jq in the image.
        :return: e.g. "jq-1.6".
        """
        return subprocess.run([self.jq, '--version'], capture_output=True, text=True,
                              timeout=JQ_TIMEOUT_SECONDS, check=True).stdout.strip()

    def auxiliary_endpoints(self):
        return {'/version': self.version}

    def docs_input_example(self) -> dict:
        return {
            'document': {'items': [{'name': 'tea', 'price': 3}, {'name': 'cake', 'price': 4.5}]},
            'query': '[.items[].price] | add',
        }
