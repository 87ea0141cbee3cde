from flask import Flask, jsonify, render_template, request


class WebviewEntrypoint:
    def perform(self, x: float) -> float:
        return x

    def webview_app(self, base_url: str):
        """
        Create WSGI app serving custom UI pages
        :param base_url Base URL prefix where WSGI app is deployed.
        """
        app = Flask(__name__, template_folder="templates")

        @app.route(base_url + "/")
        def index():
            return render_template("index.html", base_url=base_url)

        @app.route(base_url + "/postme", methods=["POST"])
        def postme():
            return jsonify({"hello": request.json})

        return app.wsgi_app
