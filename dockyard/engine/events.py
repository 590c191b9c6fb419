"""The event bus behind ``GET /events``: a bounded history plus live subscribers."""
from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    type: str  # container | image | network | volume | daemon
    action: str
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_nano: int = 0

    def to_json(self) -> dict[str, Any]:
        seconds = self.time_nano // 1_000_000_000
        body: dict[str, Any] = {
            "Type": self.type,
            "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": "local",
            "time": seconds,
            "timeNano": self.time_nano,
        }
        if self.type == "container":
            body.update(status=self.action, id=self.actor_id,
                        **{"from": self.attributes.get("image", "")})
        elif self.type == "image":
            body.update(status=self.action, id=self.actor_id)
        return body


class EventBus:
    def __init__(self, history: int = 1024) -> None:
        self._lock = threading.Lock()
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: set[queue.Queue[Event]] = set()
        # A container's labels, which Docker adds to the attributes of its events; the last
        # seen are kept so that ``destroy`` (after the record is gone) carries them too.
        self.labels_of: Callable[[str], dict[str, str] | None] | None = None
        self._labels: dict[str, dict[str, str]] = {}

    def _with_labels(self, action: str, actor_id: str,
                     attributes: dict[str, str]) -> dict[str, str]:
        if self.labels_of is None:
            return attributes
        labels = self.labels_of(actor_id)
        with self._lock:
            if labels is None:
                labels = self._labels.get(actor_id, {})
            else:
                self._labels[actor_id] = labels
            if action == "destroy":
                self._labels.pop(actor_id, None)
        return {**labels, **attributes}

    def publish(self, type_: str, action: str, actor_id: str, **attributes: str) -> Event:
        if type_ == "container":
            attributes = self._with_labels(action, actor_id, attributes)
        event = Event(type_, action, actor_id, attributes, time.time_ns())
        with self._lock:
            self._history.append(event)
            for sub in self._subscribers:
                sub.put(event)
        return event

    def subscribe(self, since_nano: int | None = None) -> tuple[list[Event], "queue.Queue[Event]"]:
        """Past events newer than ``since_nano`` (if given) and a queue of future ones."""
        sub: queue.Queue[Event] = queue.Queue()
        with self._lock:
            past = [e for e in self._history if since_nano is not None and e.time_nano >= since_nano]
            self._subscribers.add(sub)
        return past, sub

    def unsubscribe(self, sub: "queue.Queue[Event]") -> None:
        with self._lock:
            self._subscribers.discard(sub)
