"""`formsvc worker`, `formsvc dispatch`, `formsvc db upgrade` and `formsvc keys ...`."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Annotated

import typer

from formsvc.settings import get_settings


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(burst: Annotated[bool, typer.Option(help="Exit when the queue is empty")] = False,
               name: Annotated[str | None, typer.Option(help="Worker name (default: host + pid)")] = None) -> None:
        """Run an rq worker for extraction and print-pack jobs."""
        from rq import Worker
        from rq.serializers import JSONSerializer

        from formsvc.logs import configure
        from formsvc.service.queue import SafeJob, get_queue, get_redis
        from formsvc.service.warm import publish_warm_state, warm_up

        os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # Tesseract's OpenMP is ~4x slower on 2 cores
        configure()
        log = logging.getLogger("formsvc.worker")
        # Imported before forking work horses, so each job starts warm (models, OpenCV, fonts).
        import importlib

        for module in ("formsvc.extract.pipeline", "formsvc.render.pack"):
            importlib.import_module(module)
        settings = get_settings()
        timings = warm_up() if settings.worker_warm_up else {}
        if timings:
            log.info("warm: %s", ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()),
                     extra={"stage": "warm_up", "ms": round(sum(timings.values()) * 1000, 1)})
        w = Worker([get_queue()], connection=get_redis(), name=name, job_class=SafeJob, serializer=JSONSerializer)
        publish_warm_state(w.name, timings)
        # rq adds no handler of its own when the root logger has one: its lines come out as text or JSON lines too.
        w.work(burst=burst, logging_level=settings.log_level)

    @app.command("dispatch")
    def dispatch() -> None:
        """Deliver webhook events from the outbox and re-enqueue jobs whose worker died."""
        from formsvc.logs import configure
        from formsvc.service.dispatch import run_forever

        configure()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        run_forever(stop)

    db = typer.Typer(help="Database schema")
    app.add_typer(db, name="db")

    @db.command("upgrade")
    def db_upgrade() -> None:
        """Apply all migrations to FORMSVC_DATABASE_URL (or the embedded SQLite file)."""
        from formsvc.db import upgrade

        upgrade()
        typer.echo(f"Cơ sở dữ liệu đã ở phiên bản mới nhất: {_masked(get_settings().resolved_database_url)}")

    keys = typer.Typer(help="API keys")
    app.add_typer(keys, name="keys")

    @keys.command("create")
    def keys_create(role: Annotated[str, typer.Option(help="admin | clerk | reviewer | integration")],
                    unit: Annotated[str | None, typer.Option(help="Unit the key is limited to")] = None,
                    name: Annotated[str, typer.Option(help="Who holds the key")] = "") -> None:
        """Make an API key; it is printed once and only its hash is stored."""
        from formsvc.db import session_scope, upgrade
        from formsvc.service.auth import create_key

        upgrade()
        with session_scope() as s:
            _, token = create_key(s, role=role, unit=unit, name=name)
        typer.echo(token)

    @keys.command("list")
    def keys_list() -> None:
        """List keys (never their secrets)."""
        from sqlalchemy import select

        from formsvc.db import session_scope
        from formsvc.db.tables import ApiKey

        with session_scope() as s:
            for k in s.scalars(select(ApiKey).order_by(ApiKey.created_at)):
                state = "thu hồi" if k.revoked_at else "hiệu lực"
                typer.echo(f"{k.id}\t{k.role}\t{k.unit or '-'}\t{k.name}\t{state}")

    @keys.command("revoke")
    def keys_revoke(key_id: str) -> None:
        """Revoke a key by its id (the part after fsk_)."""
        from formsvc.db import session_scope
        from formsvc.service.auth import revoke_key

        with session_scope() as s:
            ok = revoke_key(s, key_id)
        if not ok:
            typer.echo("Không tìm thấy khóa còn hiệu lực.", err=True)
            raise typer.Exit(3)


def _masked(url: str) -> str:
    """Never print a database password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
