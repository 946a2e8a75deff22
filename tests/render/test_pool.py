"""The render pool: warm renderer processes give the renderer's own bytes and errors, and a
worker that dies or hangs costs one desk a clear error, never a wait without end."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import multiprocessing
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from pypdf import PdfReader

from aftercare.content.load import load_project
from aftercare.content.model import Project
from aftercare.errors import InputError, MissingGlyphs, RenderError
from aftercare.render.card import PatientCard
from aftercare.render.handouts import HandoutRenderer
from aftercare.render.pool import STOPPED, RenderPool
from tests.conftest import ROOT
from tests.render.test_handouts import CHECKOUT, longest_card

TREATED_ON = dt.date(2026, 11, 23)


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(ROOT)


@pytest.fixture(scope="module")
def pool(project: Project) -> Iterator[RenderPool]:
    with RenderPool(project, 2) as running:
        yield running


def card(name: str, **changes: object) -> PatientCard:
    fields: dict[str, object] = dict(areas="frown lines", provider="Dr Rivera",
                                     aftercare_consent=True, reminder_consent=True,
                                     planned_at=CHECKOUT)
    fields.update(changes)
    return PatientCard(name, TREATED_ON, **fields)  # type: ignore[arg-type]


def workers(other: RenderPool | None = None) -> list[multiprocessing.process.BaseProcess]:
    """The render processes running, but those of ``other`` (the module's shared pool)."""
    theirs = set() if other is None else {w.process.pid for w in list(other._idle.queue)}
    return [p for p in multiprocessing.active_children()
            if p.name == "aftercare-render" and p.pid not in theirs]


def test_the_pool_writes_the_renderers_own_bytes(project: Project, pool: RenderPool) -> None:
    here = HandoutRenderer(project)
    for sheet in ("aftercare-cosmetic", "aftercare-migraine"):
        handout = project.handouts[sheet]
        for patient in (card("Zoë Novák", product="BOTOX Cosmetic", units="20", lot="C4021A"),
                        longest_card(), None):
            assert pool.pdf(handout, patient) == here.pdf(handout, patient), (sheet, patient)
    assert pool.diary_pdf(card("Ana Ruiz")) == here.diary_pdf(card("Ana Ruiz"))
    # In Spanish, and a checkout printed in two languages, one after the other.
    spanish = project.in_language("es").handouts["aftercare-cosmetic"]
    both = (spanish, project.handouts["aftercare-cosmetic"])
    assert pool.pdf_sheets(both, card("Ana Ruiz")) == here.pdf_sheets(both, card("Ana Ruiz"))
    assert pool.diary_pdf(card("Ana Ruiz"), "es") == here.diary_pdf(card("Ana Ruiz"), "es")


def test_a_sites_sheet_from_the_pool_is_the_sites_own(project: Project, pool: RenderPool) -> None:
    here = HandoutRenderer(project)
    handout = project.handouts["aftercare-cosmetic"]
    phones = {site: project.at_site(site).clinic.phone for site in ("portland", "scottsdale")}
    for site, phone in phones.items():
        pdf = pool.at_site(site).pdf_sheets((handout,), card("Ana Ruiz"))
        assert pdf == here.at_site(site).pdf_sheets((handout,), card("Ana Ruiz"))
        text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
        others = [other for other in phones.values() if other != phone]
        assert phone in text and not any(other in text for other in others), site
    assert pool.at_site("portland").diary_pdf(card("Ana Ruiz")) == (
        here.at_site("portland").diary_pdf(card("Ana Ruiz")))


def test_refusals_come_back_as_the_renderers_own_errors(
    project: Project, pool: RenderPool
) -> None:
    sheet = project.handouts["aftercare-cosmetic"]
    with pytest.raises(MissingGlyphs) as caught:
        pool.pdf(sheet, card("Ana 李"))
    assert (caught.value.field, caught.value.characters) == ("name", ("李",))
    assert str(caught.value) == "name: expected letters the handout font has; got '李' (U+674E)"
    topic = next(h for key, h in project.handouts.items()
                 if key not in {c.handout for c in project.campaigns.values()})
    with pytest.raises(InputError) as refused:
        pool.pdf(topic, card("Ana"))
    assert refused.value.field == "topic"
    assert str(refused.value) == str(_in_process(project, topic, card("Ana")))


def _in_process(project: Project, handout: object, patient: PatientCard) -> InputError:
    with pytest.raises(InputError) as caught:
        HandoutRenderer(project).pdf(handout, patient)  # type: ignore[arg-type]
    return caught.value


def test_desks_at_once_each_get_their_own_patients_handout(
    project: Project, pool: RenderPool
) -> None:
    names = ["Ana Ruiz", "Björn Ólafsson", "Chloé Martin", "Jesús Peña"] * 2
    sheet = project.handouts["aftercare-cosmetic"]
    got = at_once(len(names), lambda n: pool.pdf(sheet, card(names[n])))
    assert_each_has_its_own_name(got, names)


def at_once(count: int, task: Callable[[int], bytes]) -> list[bytes]:
    """``task(0)`` to ``task(count - 1)``, each in its own thread, started together."""
    got: dict[int, bytes] = {}
    start = threading.Barrier(count)

    def run(n: int) -> None:
        start.wait()
        got[n] = task(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [got[n] for n in range(count)]


def assert_each_has_its_own_name(pdfs: Sequence[bytes], names: Sequence[str]) -> None:
    for pdf, name in zip(pdfs, names, strict=True):
        side_1 = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
        assert f"Name: {name}" in side_1
        assert all(other not in side_1 for other in set(names) - {name})


def test_a_worker_killed_mid_render_costs_that_desk_a_clear_error(
    project: Project, pool: RenderPool
) -> None:
    with RenderPool(project, 1) as single:
        (worker,) = workers(pool)
        os.kill(worker.pid or 0, signal.SIGSTOP)  # it stays in the middle of what it is given
        failure: list[BaseException] = []

        def desk() -> None:
            try:
                single.pdf(project.handouts["aftercare-cosmetic"], card("Ana"))
            except RenderError as exc:
                failure.append(exc)

        waiting = threading.Thread(target=desk)
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # waiting for its render...
        os.kill(worker.pid or 0, signal.SIGKILL)  # ...when the worker dies
        waiting.join(10)
        assert not waiting.is_alive() and [str(e) for e in failure] == [STOPPED]
        # A new worker took its place: the next desk gets its handout.
        pdf = single.pdf(project.handouts["aftercare-cosmetic"], card("Ben"))
        assert "Name: Ben" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
        assert [w.pid for w in workers(pool)] != [worker.pid]


def test_a_hung_render_is_given_up_after_the_timeout(project: Project, pool: RenderPool) -> None:
    with RenderPool(project, 1, timeout=1.0) as single:
        (worker,) = workers(pool)
        os.kill(worker.pid or 0, signal.SIGSTOP)
        with pytest.raises(RenderError) as caught:
            single.pdf(project.handouts["aftercare-cosmetic"], card("Ana"))
        assert str(caught.value).startswith("the handout could not be made in 1 s; the process "
                                            "rendering it was stopped and a new one is starting")
        worker.join(5)
        assert worker.exitcode == -signal.SIGKILL
        single.timeout = 60.0  # the replacement warms up first
        assert single.diary_pdf(card("Ben")).startswith(b"%PDF-")


def test_a_worker_found_dead_while_idle_is_replaced_unseen(
    project: Project, pool: RenderPool
) -> None:
    with RenderPool(project, 1) as single:
        (worker,) = workers(pool)
        worker.kill()
        worker.join(5)
        assert single.diary_pdf(card("Ana")).startswith(b"%PDF-")


def test_the_pool_does_not_start_on_a_renderer_that_reaches_outside(
    project: Project, pool: RenderPool, tmp_path: Path
) -> None:
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    secret = tmp_path / "secret.svg"
    secret.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>", encoding="utf-8")
    logo = tmp_path / "templates" / "assets" / project.clinic.logo
    logo.unlink()
    logo.symlink_to(secret)
    moved = dataclasses.replace(project, root=tmp_path)
    with pytest.raises(RenderError) as caught:
        RenderPool(moved, 1)
    assert str(caught.value).startswith("a handout renderer could not start: ")
    logo_uri = (tmp_path / "templates" / "assets" / project.clinic.logo).as_uri()
    assert str(caught.value) == (
        f"a handout renderer could not start: aftercare-cosmetic: refused {logo_uri}: outside "
        "the templates folder; nothing was written")
    assert workers(pool) == []


def test_the_pool_does_not_start_on_a_stylesheet_weasyprint_warns_about(
    project: Project, pool: RenderPool, tmp_path: Path
) -> None:
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    css = tmp_path / "templates" / "assets" / "handout.css"
    css.write_text(css.read_text(encoding="utf-8") + "\nh1 { colour: red; }\n", encoding="utf-8")
    with pytest.raises(RenderError) as caught:
        RenderPool(dataclasses.replace(project, root=tmp_path), 1)
    message = str(caught.value)
    assert message.startswith("a handout renderer could not start: the handout stylesheets: "
                              "WeasyPrint reported warning: ")
    assert "colour" in message
    assert workers(pool) == []
