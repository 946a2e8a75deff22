"""Several desks checking out at once through the app rendering with a pool of processes."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from aftercare.content.model import Project
from aftercare.outbox.store import Outbox
from aftercare.render.pool import RenderPool
from tests.render.test_pool import assert_each_has_its_own_name, at_once, workers
from tests.web.conftest import PASSWORD, Clock, add_staff, check_out, log_in, make_app

DESKS = ("Ana Ruiz", "Björn Ólafsson", "Chloé Martin", "Jesús Peña")


@pytest.fixture(scope="module")
def pool(project: Project) -> Iterator[RenderPool]:
    with RenderPool(project, 2) as running:
        yield running


def test_four_desks_at_once_each_print_their_own_patient(
    project: Project, pool: RenderPool, db_path: Path, clock: Clock
) -> None:
    app: Flask = make_app(project, db_path, clock, pool)  # type: ignore[arg-type]
    clients = []
    for n in range(len(DESKS)):
        add_staff(db_path, f"desk{n}", PASSWORD)
        client = app.test_client()
        assert log_in(client, f"desk{n}", PASSWORD).status_code == 303
        clients.append(client)

    def desk(n: int) -> bytes:
        first, last = DESKS[n].split(" ", 1)
        done = check_out(clients[n], first_name=first, last_name=last,
                         email=f"desk{n}@example.com")
        assert done.status_code == 303, done.text
        return clients[n].get(done.headers["Location"] + "/handout.pdf").data

    assert_each_has_its_own_name(at_once(len(DESKS), desk), DESKS)
    with Outbox.open(db_path) as outbox:
        assert {m.email for m in outbox.messages()} == {
            f"desk{n}@example.com" for n in range(len(DESKS))}


def test_a_render_that_hangs_gives_the_desk_a_clear_page_at_once_and_saves_nothing(
    project: Project, pool: RenderPool, db_path: Path, clock: Clock
) -> None:
    with RenderPool(project, 1, timeout=1.0) as single:
        (worker,) = workers(pool)  # the new pool's one process
        os.kill(worker.pid or 0, signal.SIGSTOP)  # it will not answer
        app: Flask = make_app(project, db_path, clock, single)  # type: ignore[arg-type]
        client = app.test_client()
        add_staff(db_path, "desk", PASSWORD)
        log_in(client, "desk", PASSWORD)
        response = check_out(client)
        assert response.status_code == 503
        page = response.text
        assert "<h1>The handout could not be made</h1>" in page
        assert "the handout could not be made in 1 s; the process rendering it was stopped" \
            in page
        assert "Nothing was saved for this patient." in page
    with Outbox.open(db_path) as outbox:
        assert outbox.messages() == []
