"""Hot reload: poll `warehouse/current`, load a new run fully off the event loop, then swap one reference."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from c360.layout import Warehouse

from . import metrics
from .state import load_state

log = logging.getLogger("c360.api.reload")


async def refresh(app) -> bool:
    """Load the run `current` points to if it is not the one served; True when swapped.

    A broken new publish is logged and the old state keeps serving (it is retried only after `current` changes).
    """
    settings = app.state.settings
    target = await asyncio.to_thread(Warehouse(settings.warehouse).current)
    if target is None or target == app.state.loaded_run or target == app.state.failed_run:
        return False
    started = time.perf_counter()
    try:
        new = await asyncio.to_thread(load_state, target, settings.graph.store, settings.warehouse, settings.realtime)
    except Exception as exc:  # noqa: BLE001 - keep serving the old state whatever went wrong
        app.state.failed_run = target
        metrics.note_reload_failed()
        log.error("publish %s not loadable, still serving %s: %s", target.run_id,
                  app.state.served.run_id if app.state.served else None, exc)
        return False
    # the models hold per-user ids and indexes (recommendations are mapped, not objects): collect once and freeze
    # them so later GC passes skip them
    await asyncio.to_thread(gc.collect)
    gc.freeze()
    old, app.state.served, app.state.loaded_run, app.state.failed_run = app.state.served, new, target, None
    log.info("now serving run %s (was %s)", new.run_id, old.run_id if old else None)
    metrics.note_reload(new.run_id, new.served_model, new.manifest, time.perf_counter() - started, time.time())
    if old is not None:
        # let in-flight requests that read the old reference finish before closing its graph connection
        app.state.closing = asyncio.create_task(_close_later(old, 30.0))
    return True


async def _close_later(state, delay: float) -> None:
    await asyncio.sleep(delay)
    await asyncio.to_thread(state.close)


async def catch_up(app) -> None:
    """Read what other workers appended to the events log and the customers log, in a thread: a request then finds
    little or nothing to read (it reads in a thread too, never on the event loop: api.live_updates.LiveEvents.behind),
    and an idle worker's lag is what it has not read in a poll, not all it was never asked for."""
    served = app.state.served
    if served is not None:
        await asyncio.to_thread(served.events.refresh)
        if served.customers is not None:
            await asyncio.to_thread(served.customers.refresh)


async def watch(app, interval: float) -> None:
    """Poll forever (cancelled at shutdown); the logs' lag is measured before catching up: how far a worker falls
    behind between two polls."""
    while True:
        await asyncio.sleep(interval)
        # each on its own: one that fails (a broken manifest, a broker away) must not stop the others
        for what, step in (("reload check", lambda: refresh(app)),
                           ("latest run's metrics", lambda: asyncio.to_thread(metrics.note_latest_run,
                                                                               app.state.settings.warehouse)),
                           ("logs' lag", lambda: asyncio.to_thread(metrics.note_logs, app.state.served)),
                           ("catching up", lambda: catch_up(app))):
            try:
                await step()
            except Exception:  # noqa: BLE001 - the watcher must never die
                log.exception("%s failed", what)
