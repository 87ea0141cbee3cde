class ImportedEntrypoint:
    """Has perform too, but lives in another module: not a candidate of fatman_entrypoint."""

    def perform(self) -> str:
        return "imported"
