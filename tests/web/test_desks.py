"""Several desks checking out at once through the app rendering with a pool of processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from aftercare.content.model import Project
from aftercare.outbox.store import Outbox
from aftercare.render.pool import RenderPool
from tests.render.test_pool import assert_each_has_its_own_name, at_once
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
