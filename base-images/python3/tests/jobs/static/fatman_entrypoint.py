class StaticEntrypoint:
    def perform(self) -> str:
        return "static"

    def static_endpoints(self):
        """Dict of endpoint paths mapped to corresponding static files that ought be served."""
        return {
            "/xrai": "xrai.yaml",
            "/manifest": ("fatman.yaml", "application/x-yaml"),
            "/docs/readme": "README.md",
            "/assets": "assets",
            "/missing": "not_there.txt",
        }
