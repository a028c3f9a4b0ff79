"""The annotation app's persistent state: one SQLite file (`<data>/masklet-app.sqlite3`).

Tables (every write is its own transaction, committed before the method returns, in WAL mode
with `synchronous=FULL`, so a `kill -9` loses nothing that a call had written):
- `projects`: one per opened or uploaded video (path, size, fps, frame count, phase 1|2|3);
- `objects`: the object ids of a project;
- `prompts`: every prompt, an ordered log (`seq` increases per project): frame, object, clicks
  `[[x, y], ...]` in video pixels, labels (1 foreground, 0 background), box `[x0, y0, x1, y1]`
  or null, whether it cleared the frame's earlier clicks, and the time. A prompt with neither
  clicks nor a box and `clear` set is "clear this object's prompts on this frame". Replaying the
  log in order rebuilds the model state (`masklet.app.projects`);
- `masks`: the latest mask of each (frame, object), a COCO RLE `{"size": [H, W], "counts": str}`
  at the video's resolution (`masklet.io.rle`);
- `verifications`: a mark per object, satisfactory or not, with a reason;
- `actions`: what the user did, with a timestamp and JSON details (for the phase statistics).

Times are seconds since the epoch (float). Rows come back as the frozen dataclasses below.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from masklet.io.rle import RLE

DATABASE_NAME = "masklet-app.sqlite3"
PHASES = (1, 2, 3)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, video_path TEXT NOT NULL, uploaded INTEGER NOT NULL,
    width INTEGER NOT NULL, height INTEGER NOT NULL, fps REAL NOT NULL,
    num_frames INTEGER NOT NULL, phase INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    obj_id INTEGER NOT NULL, created REAL NOT NULL, PRIMARY KEY (project_id, obj_id));
CREATE TABLE IF NOT EXISTS prompts (
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, frame INTEGER NOT NULL, obj_id INTEGER NOT NULL,
    points TEXT NOT NULL, labels TEXT NOT NULL, box TEXT, clear INTEGER NOT NULL,
    time REAL NOT NULL, PRIMARY KEY (project_id, seq));
CREATE TABLE IF NOT EXISTS masks (
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    frame INTEGER NOT NULL, obj_id INTEGER NOT NULL, rle TEXT NOT NULL, time REAL NOT NULL,
    PRIMARY KEY (project_id, frame, obj_id));
CREATE TABLE IF NOT EXISTS verifications (
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    obj_id INTEGER NOT NULL, satisfactory INTEGER NOT NULL, reason TEXT NOT NULL,
    time REAL NOT NULL, PRIMARY KEY (project_id, obj_id));
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    kind TEXT NOT NULL, detail TEXT NOT NULL, time REAL NOT NULL);
"""


@dataclass(frozen=True)
class ProjectRow:
    """A project: one video. `width`, `height` in pixels; `phase` 1, 2 or 3."""

    id: str
    name: str
    video_path: str
    uploaded: bool  # the video file was uploaded into the data folder (deleted with it)
    width: int
    height: int
    fps: float
    num_frames: int
    phase: int
    created: float


@dataclass(frozen=True)
class PromptRow:
    """One entry of the prompt log. `points` are `[x, y]` video pixels; `box` is
    `(x0, y0, x1, y1)` video pixels or None."""

    seq: int
    frame: int
    obj_id: int
    points: list[list[float]]
    labels: list[int]
    box: list[float] | None
    clear: bool
    time: float

    @property
    def clears_frame(self) -> bool:
        """Whether this entry removes the object's prompts on its frame (nothing to add)."""
        return self.clear and not self.points and self.box is None


@dataclass(frozen=True)
class VerificationRow:
    """A reviewer's mark on one object (masklet) of a project."""

    obj_id: int
    satisfactory: bool
    reason: str
    time: float


@dataclass(frozen=True)
class ActionRow:
    """One user action (`kind`: "create", "prompt", "propagate", ...) with JSON details."""

    id: int
    kind: str
    detail: dict[str, Any]
    time: float


class Store:
    """The app's SQLite database (see the module docstring). Thread-safe: one connection,
    used under a lock (writes are small; the model, not SQLite, is the bottleneck)."""

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / DATABASE_NAME
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.execute("PRAGMA foreign_keys=ON")
        self._connection.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: committed on success, rolled back on an exception."""
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def _query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._connection.execute(sql, parameters).fetchall())

    # ------------------------------------------------------------------ projects
    def add_project(self, project: ProjectRow) -> None:
        """Insert a new project and log its creation."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO projects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    project.id,
                    project.name,
                    project.video_path,
                    int(project.uploaded),
                    project.width,
                    project.height,
                    project.fps,
                    project.num_frames,
                    project.phase,
                    project.created,
                ),
            )
            _log(db, project.id, "create", {"video": project.video_path})

    def project(self, project_id: str) -> ProjectRow | None:
        rows = self._query("SELECT * FROM projects WHERE id = ?", (project_id,))
        return _project(rows[0]) if rows else None

    def projects(self) -> list[ProjectRow]:
        """Every project, oldest first."""
        return [_project(row) for row in self._query("SELECT * FROM projects ORDER BY created")]

    def delete_project(self, project_id: str) -> bool:
        """Delete a project and everything recorded for it; False when there was none."""
        with self._transaction() as db:
            return db.execute("DELETE FROM projects WHERE id = ?", (project_id,)).rowcount > 0

    def set_phase(self, project_id: str, phase: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE projects SET phase = ? WHERE id = ?", (phase, project_id))
            _log(db, project_id, "phase", {"phase": phase})

    # ------------------------------------------------------------------ objects
    def object_ids(self, project_id: str) -> list[int]:
        rows = self._query(
            "SELECT obj_id FROM objects WHERE project_id = ? ORDER BY obj_id", (project_id,)
        )
        return [int(row[0]) for row in rows]

    def delete_object(self, project_id: str, obj_id: int) -> bool:
        """Forget an object: its prompts (they leave the log), masks and mark."""
        with self._transaction() as db:
            found = db.execute(
                "DELETE FROM objects WHERE project_id = ? AND obj_id = ?", (project_id, obj_id)
            ).rowcount
            for table in ("prompts", "masks", "verifications"):
                db.execute(
                    f"DELETE FROM {table} WHERE project_id = ? AND obj_id = ?",
                    (project_id, obj_id),
                )
            if found:
                _log(db, project_id, "delete_object", {"obj": obj_id})
            return found > 0

    # ------------------------------------------------------------------ prompts
    def add_prompt(self, project_id: str, prompt: PromptRow, mask: RLE | None) -> PromptRow:
        """Append a prompt to the log (its `seq` is assigned here; the one given is ignored),
        create its object if new, and store the object's resulting mask on that frame (None:
        leave the stored mask). Returns the row as stored."""
        with self._transaction() as db:
            (last,) = db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM prompts WHERE project_id = ?", (project_id,)
            ).fetchone()
            stored = PromptRow(
                int(last) + 1,
                prompt.frame,
                prompt.obj_id,
                prompt.points,
                prompt.labels,
                prompt.box,
                prompt.clear,
                prompt.time,
            )
            db.execute(
                "INSERT OR IGNORE INTO objects VALUES (?, ?, ?)",
                (project_id, prompt.obj_id, prompt.time),
            )
            db.execute(
                "INSERT INTO prompts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    project_id,
                    stored.seq,
                    stored.frame,
                    stored.obj_id,
                    json.dumps(stored.points),
                    json.dumps(stored.labels),
                    None if stored.box is None else json.dumps(stored.box),
                    int(stored.clear),
                    stored.time,
                ),
            )
            if mask is not None:
                _put_mask(db, project_id, prompt.frame, prompt.obj_id, mask, prompt.time)
            detail = {"frame": prompt.frame, "obj": prompt.obj_id, "clicks": len(prompt.points)}
            _log(db, project_id, "prompt", {**detail, "box": prompt.box is not None})
            return stored

    def prompts(self, project_id: str) -> list[PromptRow]:
        """The prompt log of a project, in order."""
        rows = self._query(
            "SELECT seq, frame, obj_id, points, labels, box, clear, time FROM prompts "
            "WHERE project_id = ? ORDER BY seq",
            (project_id,),
        )
        return [
            PromptRow(
                int(seq),
                int(frame),
                int(obj_id),
                json.loads(points),
                json.loads(labels),
                None if box is None else json.loads(box),
                bool(clear),
                float(when),
            )
            for seq, frame, obj_id, points, labels, box, clear, when in rows
        ]

    # ------------------------------------------------------------------ masks
    def put_masks(self, project_id: str, frame: int, masks: dict[int, RLE]) -> None:
        """Store the masks `{obj_id: RLE}` of one frame (one transaction)."""
        now = time.time()
        with self._transaction() as db:
            for obj_id, rle in masks.items():
                _put_mask(db, project_id, frame, obj_id, rle, now)

    def masks(self, project_id: str, frame: int) -> dict[int, RLE]:
        """`{obj_id: RLE}` stored for one frame (objects without a mask there are absent)."""
        rows = self._query(
            "SELECT obj_id, rle FROM masks WHERE project_id = ? AND frame = ? ORDER BY obj_id",
            (project_id, frame),
        )
        return {int(obj_id): json.loads(rle) for obj_id, rle in rows}

    def all_masks(self, project_id: str) -> dict[int, dict[int, RLE]]:
        """`{frame: {obj_id: RLE}}` of every stored mask of a project."""
        rows = self._query(
            "SELECT frame, obj_id, rle FROM masks WHERE project_id = ? ORDER BY frame, obj_id",
            (project_id,),
        )
        frames: dict[int, dict[int, RLE]] = {}
        for frame, obj_id, rle in rows:
            frames.setdefault(int(frame), {})[int(obj_id)] = json.loads(rle)
        return frames

    # ------------------------------------------------------------------ verification
    def verify(self, project_id: str, obj_id: int, satisfactory: bool, reason: str = "") -> None:
        """Mark an object's masklet satisfactory or not (the latest mark wins)."""
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO verifications VALUES (?, ?, ?, ?, ?)",
                (project_id, obj_id, int(satisfactory), reason, now),
            )
            detail = {"obj": obj_id, "satisfactory": satisfactory, "reason": reason}
            _log(db, project_id, "verify", detail)

    def verifications(self, project_id: str) -> dict[int, VerificationRow]:
        rows = self._query(
            "SELECT obj_id, satisfactory, reason, time FROM verifications WHERE project_id = ?",
            (project_id,),
        )
        return {
            int(obj): VerificationRow(int(obj), bool(ok), str(reason), float(when))
            for obj, ok, reason, when in rows
        }

    # ------------------------------------------------------------------ actions
    def log_action(self, project_id: str, kind: str, detail: dict[str, Any]) -> None:
        """Record a user action that changes nothing else (e.g. a finished propagation)."""
        with self._transaction() as db:
            _log(db, project_id, kind, detail)

    def actions(self, project_id: str) -> list[ActionRow]:
        rows = self._query(
            "SELECT id, kind, detail, time FROM actions WHERE project_id = ? ORDER BY id",
            (project_id,),
        )
        return [
            ActionRow(int(row_id), str(kind), json.loads(detail), float(when))
            for row_id, kind, detail, when in rows
        ]


def _log(db: sqlite3.Connection, project_id: str, kind: str, detail: dict[str, Any]) -> None:
    db.execute(
        "INSERT INTO actions (project_id, kind, detail, time) VALUES (?, ?, ?, ?)",
        (project_id, kind, json.dumps(detail), time.time()),
    )


def _put_mask(
    db: sqlite3.Connection, project_id: str, frame: int, obj_id: int, rle: RLE, when: float
) -> None:
    db.execute(
        "INSERT OR REPLACE INTO masks VALUES (?, ?, ?, ?, ?)",
        (project_id, frame, obj_id, json.dumps(rle), when),
    )


def _project(row: tuple[Any, ...]) -> ProjectRow:
    project_id, name, path, uploaded, width, height, fps, num_frames, phase, created = row
    return ProjectRow(
        str(project_id),
        str(name),
        str(path),
        bool(uploaded),
        int(width),
        int(height),
        float(fps),
        int(num_frames),
        int(phase),
        float(created),
    )
