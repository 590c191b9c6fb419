"""Container records: the stored desired configuration plus the observed state."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from dockyard.errors import Conflict
from dockyard.metadata.db import Database
from dockyard.util.timefmt import ZERO_TIME


@dataclass
class State:
    status: str = "created"  # created | running | paused | restarting | removing | exited | dead
    pid: int = 0
    shim_pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    oom_killed: bool = False
    restart_count: int = 0
    manually_stopped: bool = False
    health: dict[str, Any] | None = None

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")


@dataclass
class ContainerRecord:
    id: str
    name: str
    image_id: str
    image_name: str
    created: str
    path: str
    args: list[str]
    config: dict[str, Any]
    host_config: dict[str, Any]
    state: State = field(default_factory=State)
    extra: dict[str, Any] = field(default_factory=dict)

    def stored_config(self) -> str:
        return json.dumps({"image_name": self.image_name, "path": self.path, "args": self.args,
                           "config": self.config, "host_config": self.host_config,
                           "extra": self.extra})


def _from_row(row: tuple[Any, ...]) -> ContainerRecord:
    cid, name, image_id, created, config_json, state_json = row
    stored = json.loads(config_json)
    state = State(**json.loads(state_json))
    return ContainerRecord(cid, name, image_id, stored["image_name"], created, stored["path"],
                           stored["args"], stored["config"], stored["host_config"], state,
                           stored.get("extra", {}))


_COLUMNS = "id, name, image_id, created, config, state"


class ContainerTable:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, rec: ContainerRecord) -> None:
        with self.db.tx() as cur:
            if cur.execute("SELECT id FROM containers WHERE name=?", (rec.name,)).fetchone():
                raise Conflict(_name_conflict(rec.name, self._id_of(cur, rec.name)))
            cur.execute(f"INSERT INTO containers({_COLUMNS}) VALUES(?,?,?,?,?,?)",
                        (rec.id, rec.name, rec.image_id, rec.created, rec.stored_config(),
                         json.dumps(asdict(rec.state))))

    @staticmethod
    def _id_of(cur: Any, name: str) -> str:
        row = cur.execute("SELECT id FROM containers WHERE name=?", (name,)).fetchone()
        return row[0] if row else ""

    def save_state(self, rec: ContainerRecord) -> None:
        with self.db.tx() as cur:
            cur.execute("UPDATE containers SET state=? WHERE id=?",
                        (json.dumps(asdict(rec.state)), rec.id))

    def save(self, rec: ContainerRecord) -> None:
        with self.db.tx() as cur:
            cur.execute("UPDATE containers SET name=?, config=?, state=? WHERE id=?",
                        (rec.name, rec.stored_config(), json.dumps(asdict(rec.state)), rec.id))

    def rename(self, rec: ContainerRecord, new_name: str) -> None:
        with self.db.tx() as cur:
            other = self._id_of(cur, new_name)
            if other:
                raise Conflict(_name_conflict(new_name, other))
            cur.execute("UPDATE containers SET name=? WHERE id=?", (new_name, rec.id))
        rec.name = new_name

    def delete(self, cid: str) -> None:
        with self.db.tx() as cur:
            cur.execute("DELETE FROM containers WHERE id=?", (cid,))

    def all(self) -> list[ContainerRecord]:
        return [_from_row(r) for r in self.db.query(
            f"SELECT {_COLUMNS} FROM containers ORDER BY created DESC")]

    def get(self, cid: str) -> ContainerRecord | None:
        rows = self.db.query(f"SELECT {_COLUMNS} FROM containers WHERE id=?", (cid,))
        return _from_row(rows[0]) if rows else None


def _name_conflict(name: str, other: str) -> str:
    return (f'Conflict. The container name "/{name}" is already in use by container "{other}". '
            "You have to remove (or rename) that container to be able to reuse that name.")
