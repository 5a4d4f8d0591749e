"""The one composition root: settings -> content -> database -> inbox -> channels -> server."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.api import StaffApi
from bot.channels.telegram import BURST as TELEGRAM_BURST
from bot.channels.telegram import LIMIT_PER_SECOND as TELEGRAM_LIMIT
from bot.channels.telegram import TelegramChannel
from bot.channels.web import WebChat
from bot.channels.whatsapp import WhatsAppChannel
from bot.config import Settings, load_settings
from bot.dashboard.server import Dashboard
from bot.db import Database
from bot.inbox import Inbox
from bot.logs import request_scope, valid_request_id
from bot.metrics import Metrics
from bot.metrics import routes as health_routes
from bot.notify import Listener, Notifier
from bot.outbox import OutboxWorker, requeue_in_flight
from bot.proxy import middlewares as proxy_middlewares
from flows.content import Content, load_content
from flows.engine import Options
from flows.understand import understander

log = logging.getLogger("lontar")
REQUEST_ID_HEADER = "X-Request-Id"


@dataclass
class Lontar:
    settings: Settings
    content: Content
    db: Database
    inbox: Inbox
    telegram: TelegramChannel | None = None
    whatsapp: WhatsAppChannel | None = None
    workers: dict[str, OutboxWorker] = field(default_factory=dict)
    sender_tasks: list[asyncio.Task[None]] = field(default_factory=list)  # the leader's
    metrics: Metrics | None = None
    # False: this process sends nothing on purpose (receiver only): /readyz ignores senders
    senders_expected: bool = True
    # PostgreSQL, set by serve(): tells the leader's senders about this process's commits
    notifier: Notifier | None = None
    listener: Listener | None = None  # ... and, while this process leads, hears the others'

    def close(self) -> None:
        self.db.close()

    def wake(self, channel: str, _contact_id: int) -> None:
        """After a commit: the channel's sender has something to send.

        The sender runs in this process only while it leads; otherwise the leader is told
        through the database (`notifier`, PostgreSQL), or finds the row at its next poll.
        """
        worker = self.workers.get(channel)
        if worker is None:
            return
        worker.wake()  # harmless when not running; a test may run a worker by hand
        if self.notifier is not None and not self.sender_tasks:
            self.notifier.notify(channel)

    def wake_local(self, channel: str) -> None:
        """Another process committed something for `channel` (bot.notify.Listener)."""
        worker = self.workers.get(channel)
        if worker is not None:
            worker.wake()

    def wake_channels(self, channels: frozenset[str]) -> None:
        for channel in channels:
            self.wake(channel, 0)


def build(settings: Settings | None = None, *, migrate: bool = True) -> Lontar:
    """Wire everything; a content or settings error stops here with a readable message."""
    settings = settings or load_settings()
    content = load_content(settings.content_dir)
    db = Database(settings.database_url)
    if migrate:
        db.upgrade()
    metrics = Metrics(db, content, settings.timezone)
    inbox = Inbox(db, content, Options(idle_timeout=timedelta(minutes=settings.idle_minutes)),
                  timezone=settings.timezone, secret=settings.secret_key, metrics=metrics)
    understander(content)  # build the free-text index now, not in a citizen's first turn
    lontar = Lontar(settings, content, db, inbox, metrics=metrics,
                    senders_expected=settings.role == "all")
    inbox.on_commit = lontar.wake
    if settings.telegram_bot_token:
        lontar.telegram = TelegramChannel(settings, inbox, content)
        lontar.workers["telegram"] = OutboxWorker(
            db, lontar.telegram.sender, rate=settings.telegram_rate_per_second,
            burst=TELEGRAM_BURST, limit=TELEGRAM_LIMIT,
            per_chat_rate=1.0, per_chat_burst=3, quiet=settings.quiet_hours, metrics=metrics)
    if settings.whatsapp_enabled:
        lontar.whatsapp = WhatsAppChannel(settings, inbox, content)
        lontar.workers["whatsapp"] = OutboxWorker(
            db, lontar.whatsapp.sender, rate=settings.whatsapp_rate_per_second,
            per_chat_rate=1 / settings.whatsapp_pair_seconds, per_chat_burst=10,
            quiet=settings.quiet_hours, metrics=metrics)
    # Content, the index and the libraries live as long as the process: keeping them out of
    # the garbage collector's scans removes most of its pauses under load (bench/turns.py).
    gc.freeze()
    return lontar


@web.middleware
async def _request_id(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """Each request runs under a request id (bot.logs): the client's X-Request-Id if short
    and plain, else a new one; it goes back in the response's X-Request-Id."""
    given = request.headers.get(REQUEST_ID_HEADER)
    with request_scope(given if valid_request_id(given) else None, inherit=False) as rid:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[REQUEST_ID_HEADER] = rid
            raise
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = rid
        return response


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


def dashboard_of(lontar: Lontar) -> Dashboard:
    s = lontar.settings
    return Dashboard(
        lontar.db, lontar.content, data_dir=s.data_dir, timezone=s.timezone,
        idle_minutes=s.session_idle_minutes, login_attempts=s.login_attempts,
        secure=s.secure_cookies,
        wake=lontar.wake_channels, secret=s.secret_key, quiet=s.quiet_hours)


def web_app(lontar: Lontar) -> web.Application:
    s = lontar.settings
    app = web.Application(middlewares=[_request_id, *proxy_middlewares(s.trusted_proxies),
                                       _error_middleware(lontar.content)],
                          client_max_size=max(s.web_max_body, s.whatsapp_max_body))
    WebChat(lontar.inbox, lontar.content, s.web_rate_per_minute, s.web_max_body).routes(app)
    if lontar.telegram is not None:
        lontar.telegram.routes(app)
    if lontar.whatsapp is not None:
        lontar.whatsapp.routes(app)
    if lontar.content.complaints is not None:
        dashboard_of(lontar).routes(app)
    if lontar.content.applications is not None:
        StaffApi(lontar.db, lontar.content, secret=s.secret_key, timezone=s.timezone,
                 wake=lontar.wake_channels).routes(app)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/healthz", healthz)
    health_routes(app, lontar)  # /readyz, /metrics
    return app


async def recover(lontar: Lontar) -> None:
    """Finish what a crash interrupted: in-flight sends and stored but unhandled updates."""
    requeued = await lontar.db.transaction(requeue_in_flight)
    handled = await lontar.inbox.process_pending()
    if requeued or handled:
        log.info("recovered: %d outbox rows requeued, %d updates processed", requeued, handled)


async def start_channels(lontar: Lontar, *, senders: bool = True) -> None:
    """Start the push channels: what receives, and (`senders`) what only the leader runs."""
    if lontar.telegram is not None:
        await lontar.telegram.start()
    if senders:
        start_senders(lontar)


def start_senders(lontar: Lontar, *, idle_poll: float = 1.0) -> None:
    """The outbox workers, and Telegram's long polling if no webhook: one process's work.

    With a `listener` (PostgreSQL) the other processes' commits wake the workers at once;
    `idle_poll` is then only the fallback for a notification that was lost.
    """
    if lontar.telegram is not None and not lontar.telegram.webhook_mode:
        lontar.sender_tasks.append(asyncio.create_task(lontar.telegram.poll(),
                                                       name="poller:telegram"))
    for channel, worker in lontar.workers.items():  # named: /readyz reports them by name
        lontar.sender_tasks.append(asyncio.create_task(worker.run(idle_poll),
                                                       name=f"sender:{channel}"))
    if lontar.listener is not None and lontar.workers:
        lontar.sender_tasks.append(asyncio.create_task(
            lontar.listener.listen(lontar.wake_local, tuple(lontar.workers)),
            name="listener:outbox"))


async def stop_senders(lontar: Lontar) -> None:
    """Cancel the leader's work; from here on this process's commits notify the leader."""
    for task in lontar.sender_tasks:
        task.cancel()
    await asyncio.gather(*lontar.sender_tasks, return_exceptions=True)
    lontar.sender_tasks.clear()


async def stop_channels(lontar: Lontar) -> None:
    await stop_senders(lontar)
    if lontar.telegram is not None:
        await lontar.telegram.stop()
    if lontar.whatsapp is not None:
        await lontar.whatsapp.stop()


async def serve(lontar: Lontar) -> None:
    """Serve until SIGINT/SIGTERM; run the scheduler and the senders while leading."""
    from bot.jobs import start_scheduler  # APScheduler only where the server runs
    from bot.leader import Leadership

    if lontar.db.engine.dialect.name == "postgresql":  # several processes may serve
        lontar.notifier = Notifier(lontar.db.engine)
        lontar.listener = Listener(lontar.db.engine)
    await start_channels(lontar, senders=False)
    scheduler: Any = None

    async def elected() -> None:
        nonlocal scheduler
        await recover(lontar)  # only the leader: a receiver must not requeue its sends
        start_senders(lontar)
        scheduler = start_scheduler(lontar)

    async def deposed() -> None:
        nonlocal scheduler
        if scheduler is not None:
            scheduler.shutdown(wait=False)
            scheduler = None
        await stop_senders(lontar)

    leading: asyncio.Task[None] | None = None
    if lontar.settings.role == "all":
        leading = asyncio.create_task(Leadership(lontar.db.engine).run(elected, deposed))
    runner = web.AppRunner(web_app(lontar), access_log=None)
    await runner.setup()
    s = lontar.settings
    site = web.TCPSite(runner, s.host, s.port)
    await site.start()
    print(f"Lontar web chat: http://{s.host}:{s.port}/  (Ctrl-C to stop)", flush=True)
    if lontar.content.complaints is not None:
        print(f"Dashboard: http://{s.host}:{s.port}/admin  (accounts: lontar admin "
              "create-user)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if lontar.telegram is not None:
        mode = "webhook" if lontar.telegram.webhook_mode else "long polling"
        print(f"Telegram: @{lontar.telegram.username} ({mode})", flush=True)
    if lontar.whatsapp is not None:
        print(f"WhatsApp: webhook at http://{s.host}:{s.port}/webhooks/whatsapp", flush=True)
    if lontar.settings.role == "receiver":
        print("Receiver only: webhooks and web chat; another process sends", flush=True)
    try:
        await stop.wait()
    finally:
        if leading is not None:
            leading.cancel()
            await asyncio.gather(leading, return_exceptions=True)
        await runner.cleanup()
        await stop_channels(lontar)
        if lontar.notifier is not None:
            await lontar.notifier.close()
