import asyncio


class AsyncEntrypoint:
    """A job written with asyncio: perform and an auxiliary endpoint are coroutines."""

    async def perform(self, x: int, delay: float = 0.0) -> int:
        await asyncio.sleep(delay)
        return x * 2

    async def ping(self) -> str:
        return "pong"

    def auxiliary_endpoints(self):
        return {"/ping": self.ping}
