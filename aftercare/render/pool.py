"""A small pool of warm handout renderers in their own processes, for many desks at once.

Each worker process builds one ``HandoutRenderer`` (WeasyPrint, fonts, stylesheets) and
renders every checkout sheet once, in each language, before it takes work, so side 2 of each
is laid out and kept. Renders then run in parallel on the machine's cores, outside the web
process, whose threads only wait for the answer (so look-ups stay quick). The bytes are the
renderer's own: the same PDF, the same restricted fetcher, the same refusal of any WeasyPrint
warning.

A worker that dies or takes longer than ``timeout`` is killed and replaced in the background;
the desk whose render it held gets a RenderError saying so at once, never a wait without end.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, ClassVar, Final

from aftercare.content.model import Handout, Project
from aftercare.errors import InputError, MissingGlyphs, PipelineError, RenderError
from aftercare.render.card import PatientCard

logger = logging.getLogger("aftercare.render.pool")

DEFAULT_TIMEOUT: Final = 30.0  # seconds for one render (they take about 0.1 s)
START_TIMEOUT: Final = 120.0  # seconds for a worker to load WeasyPrint and warm up
_SAMPLE_DAY: Final = dt.date(2026, 1, 5)  # any date: side 2, the part kept, names none
STOPPED: Final = ("the handout could not be made: the process rendering it stopped (a new one "
                  "is starting); nothing was printed. Press the button again.")


def default_size() -> int:
    """One worker per core, at most 4: renders are CPU-bound."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class _Worker:
    process: BaseProcess
    connection: Connection


class RenderPool:
    """``pdf``, ``pdf_sheets`` and ``diary_pdf`` as ``HandoutRenderer`` has them, safe to
    call from threads."""

    thread_safe: ClassVar[bool] = True  # the web app needs no lock around it

    def __init__(self, project: Project, size: int | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        if size is not None and size < 1:
            raise ValueError(f"size must be at least 1; got {size}")
        self.project, self.size, self.timeout = project, size or default_size(), timeout
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._closed = False
        starting = [self._start() for _ in range(self.size)]
        try:
            for worker in starting:
                self._await_ready(worker)
                self._idle.put(worker)
        except BaseException:
            for worker in starting:
                _stop(worker)
            raise

    def pdf(self, handout: Handout, patient: PatientCard | None) -> bytes:
        return self._call(None, "pdf", handout, patient)

    def pdf_sheets(self, handouts: Sequence[Handout], patient: PatientCard) -> bytes:
        return self._call(None, "pdf_sheets", tuple(handouts), patient)

    def diary_pdf(self, patient: PatientCard | None, language: str | None = None) -> bytes:
        return self._call(None, "diary_pdf", patient, language)

    def at_site(self, site: str) -> SitePool:
        """The pool rendering for the patients of ``site``, as ``HandoutRenderer.at_site``."""
        return SitePool(self, site)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                _stop(self._idle.get_nowait())
            except queue.Empty:
                return

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- internals

    def _call(self, site: str | None, method: str, *args: object) -> bytes:
        worker = self._take()
        try:
            worker.connection.send((site, method, args))
            if not worker.connection.poll(self.timeout):  # also True when the worker is gone
                self._replace(worker)
                raise RenderError(f"the handout could not be made in {self.timeout:g} s; the "
                                  "process rendering it was stopped and a new one is starting;"
                                  " nothing was printed. Press the button again.")
            reply = worker.connection.recv()
        except (EOFError, OSError):
            self._replace(worker)
            raise RenderError(STOPPED) from None
        self._idle.put(worker)
        return _unpacked(reply)

    def _take(self) -> _Worker:
        """An idle worker that is alive; a dead one found idle is replaced on the way."""
        while True:
            try:
                worker = self._idle.get(timeout=self.timeout)
            except queue.Empty:
                raise RenderError(f"every handout renderer was busy for {self.timeout:g} s; "
                                  "nothing was printed. Press the button again.") from None
            if worker.process.is_alive():
                return worker
            self._replace(worker)

    def _start(self) -> _Worker:
        mine, theirs = self._context.Pipe()
        process = self._context.Process(target=serve, args=(theirs, self.project),
                                        name="aftercare-render", daemon=True)
        process.start()
        theirs.close()
        return _Worker(process, mine)

    def _await_ready(self, worker: _Worker) -> None:
        try:
            if not worker.connection.poll(START_TIMEOUT):
                raise RenderError(f"a handout renderer did not start in {START_TIMEOUT:g} s")
            kind, detail = worker.connection.recv()
        except (EOFError, OSError):
            raise RenderError("a handout renderer stopped while starting") from None
        if kind != "ready":
            raise RenderError(f"a handout renderer could not start: {detail}")

    def _replace(self, worker: _Worker) -> None:
        """Stop ``worker`` and start another in the background (it warms up first)."""
        _stop(worker)
        logger.error("a handout renderer process stopped or hung (exit code %s); replacing it",
                     worker.process.exitcode)

        def start_another() -> None:
            if self._closed:
                return
            fresh = self._start()
            try:
                self._await_ready(fresh)
            except PipelineError as exc:
                _stop(fresh)
                if not self._closed:  # not merely ended by the server stopping
                    logger.error("a new handout renderer could not start (%s)", exc)
                return
            if self._closed:
                _stop(fresh)
            else:
                self._idle.put(fresh)

        threading.Thread(target=start_another, name="aftercare-render-restart",
                         daemon=True).start()


@dataclass(frozen=True)
class SitePool:
    """A pool's renders for one site's patients: its name, numbers and logo on the sheet."""

    pool: RenderPool
    site: str
    thread_safe: ClassVar[bool] = True

    def pdf(self, handout: Handout, patient: PatientCard | None) -> bytes:
        return self.pool._call(self.site, "pdf", handout, patient)

    def pdf_sheets(self, handouts: Sequence[Handout], patient: PatientCard) -> bytes:
        return self.pool._call(self.site, "pdf_sheets", tuple(handouts), patient)

    def diary_pdf(self, patient: PatientCard | None, language: str | None = None) -> bytes:
        return self.pool._call(self.site, "diary_pdf", patient, language)


def serve(connection: Connection, project: Project) -> None:
    """A worker process: warm up, say so, then render what is asked until the pipe closes."""
    from aftercare.render.handouts import HandoutRenderer

    # Ctrl+C at the server's terminal reaches the whole process group: the server stops, and
    # its workers end when their pipe closes, without a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    try:
        renderer = HandoutRenderer(project)
        # Lay out and keep each sheet's side 2, in each language, for each site.
        for site in (None, *sorted(project.sites)):
            local = renderer if site is None else renderer.at_site(site)
            for code in project.languages:
                written = project.in_language(code)
                for campaign in written.campaigns.values():
                    handout = written.handouts.get(campaign.handout)
                    if handout is not None:
                        local.pdf(handout, PatientCard("Sample Patient", _SAMPLE_DAY))
    except PipelineError as exc:
        connection.send(("failed", str(exc)))
        return
    connection.send(("ready", None))
    while True:
        try:
            site, method, args = connection.recv()
        except (EOFError, OSError):  # the web process has gone
            return
        local = renderer if site is None else renderer.at_site(site)
        connection.send(_packed(getattr(local, method), args))


def _packed(render: Any, args: tuple[object, ...]) -> tuple[str, Any]:
    """A render's outcome in a form that crosses the pipe: the bytes, or the error's parts
    (the errors' own constructors take other arguments than they keep)."""
    try:
        return ("pdf", render(*args))
    except MissingGlyphs as exc:
        return ("glyphs", (exc.field, exc.characters))
    except InputError as exc:
        return ("input", (exc.field, exc.message))
    except RenderError as exc:
        return ("render", str(exc))
    except Exception as exc:  # a bug: its class only, the message may quote what was typed
        return ("render", f"the handout could not be made ({type(exc).__name__}); nothing "
                          "was printed")


def _unpacked(reply: tuple[str, Any]) -> bytes:
    kind, value = reply
    if kind == "pdf":
        pdf: bytes = value
        return pdf
    if kind == "glyphs":
        raise MissingGlyphs(*value)
    if kind == "input":
        raise InputError(*value)
    raise RenderError(value)


def _stop(worker: _Worker) -> None:
    worker.connection.close()
    if worker.process.is_alive():
        worker.process.kill()
    worker.process.join(5)
