"""A Racetrack 2.x job with a web UI: ``webview_app`` returns a Flask app served under /api/v1/webview."""

from flask import Flask, jsonify, render_template, request


class JobEntrypoint:
    """Greets people, through the API and through its own page."""

    def perform(self, name: str, excited: bool = False) -> str:
        """
        Greet someone.
        :param name: Who to greet.
        :param excited: End with "!" instead of ".".
        :return: The greeting.
        """
        return f"Hello, {name}{'!' if excited else '.'}"

    def docs_input_example(self) -> dict:
        return {'name': 'Racetrack', 'excited': True}

    def webview_app(self, base_url: str):
        """
        Create the WSGI app serving the job's pages.
        :param base_url: The prefix the app is mounted at (/pub/job/<name>/<version>/api/v1/webview);
            its routes must include it.
        """
        app = Flask(__name__, template_folder='templates', static_folder=None)

        @app.route(base_url + '/')
        def index():
            # ./static is served by the wrapper at <base_url>/static/.
            return render_template('index.html', base_url=base_url)

        @app.route(base_url + '/greet', methods=['POST'])
        def greet():
            body = request.get_json(silent=True) or {}
            name = str(body.get('name') or '').strip()
            if not name:
                return jsonify({'error': 'send {"name": "..."}'}), 400
            return jsonify({'greeting': self.perform(name, bool(body.get('excited')))})

        return app.wsgi_app
