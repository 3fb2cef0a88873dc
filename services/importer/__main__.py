import asyncio

from .app import app

asyncio.run(app.run())
