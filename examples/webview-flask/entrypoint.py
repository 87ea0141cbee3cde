"""A job with a custom web UI: ``webview_app`` returns a Flask app served under /api/v1/webview."""

from importlib.metadata import version

from flask import Flask, jsonify, render_template, request


class Greeter:
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
        Create WSGI app serving custom UI pages
        :param base_url Base URL prefix where WSGI app is deployed.
        """
        app = Flask(__name__, template_folder='templates')

        @app.route(base_url + '/')
        def index():
            # The version shows which Flask serves the page: the job's own, from requirements.txt.
            return render_template('index.html', base_url=base_url, flask_version=version('flask'))

        @app.route(base_url + '/greet', methods=['POST'])
        def greet():
            body = request.get_json(silent=True) or {}
            name = str(body.get('name') or '').strip()
            if not name:
                return jsonify({'error': 'send {"name": "..."}'}), 400
            return jsonify({'greeting': self.perform(name, bool(body.get('excited')))})

        return app.wsgi_app
