"""The one composition root: settings -> content -> database -> inbox -> channels -> server."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.channels.web import WebChat
from bot.config import Settings, load_settings
from bot.db import Database
from bot.inbox import Inbox
from bot.outbox import requeue_in_flight
from flows.content import Content, load_content
from flows.engine import Options
from flows.understand import understander

log = logging.getLogger("lontar")


@dataclass
class Lontar:
    settings: Settings
    content: Content
    db: Database
    inbox: Inbox

    def close(self) -> None:
        self.db.close()


def build(settings: Settings | None = None, *, migrate: bool = True) -> Lontar:
    """Wire everything; a content or settings error stops here with a readable message."""
    settings = settings or load_settings()
    content = load_content(settings.content_dir)
    db = Database(settings.database_url)
    if migrate:
        db.upgrade()
    inbox = Inbox(db, content, Options(idle_timeout=timedelta(minutes=settings.idle_minutes)))
    understander(content)  # build the free-text index now, not in a citizen's first turn
    # Content, the index and the libraries live as long as the process: keeping them out of
    # the garbage collector's scans removes most of its pauses under load (bench/turns.py).
    gc.freeze()
    return Lontar(settings, content, db, inbox)


def _error_middleware(content: Content) -> Middleware:
    @web.middleware
    async def errors(request: web.Request, handler):  # type: ignore[no-untyped-def]
        """No exception escapes to the client: unexpected ones become a clean 500."""
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return web.json_response(
                {"error": "internal", "message": content.msg("id", "web_error")}, status=500
            )

    return errors


def web_app(lontar: Lontar) -> web.Application:
    s = lontar.settings
    app = web.Application(middlewares=[_error_middleware(lontar.content)],
                          client_max_size=s.web_max_body)
    WebChat(lontar.inbox, lontar.content, s.web_rate_per_minute, s.web_max_body).routes(app)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/healthz", healthz)
    return app


async def recover(lontar: Lontar) -> None:
    """Finish what a crash interrupted: in-flight sends and stored but unhandled updates."""
    requeued = await lontar.db.transaction(requeue_in_flight)
    handled = await lontar.inbox.process_pending()
    if requeued or handled:
        log.info("recovered: %d outbox rows requeued, %d updates processed", requeued, handled)


async def serve(lontar: Lontar) -> None:
    """Serve until SIGINT/SIGTERM."""
    await recover(lontar)
    runner = web.AppRunner(web_app(lontar), access_log=None)
    await runner.setup()
    s = lontar.settings
    site = web.TCPSite(runner, s.host, s.port)
    await site.start()
    print(f"Lontar web chat: http://{s.host}:{s.port}/  (Ctrl-C to stop)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
