"""`VideoState`: everything a video session owns (frames, objects, a bounded feature cache)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from masklet.io.frames import FrameSource
from masklet.model.sam2 import ImageFeatures
from masklet.session.objects import ObjectRegistry


class FeatureCache:
    """Image encodings of the most recently used frames (least recently used evicted)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._entries: OrderedDict[int, ImageFeatures] = OrderedDict()

    def get(self, frame_idx: int) -> ImageFeatures | None:
        features = self._entries.get(frame_idx)
        if features is not None:
            self._entries.move_to_end(frame_idx)
        return features

    def put(self, frame_idx: int, features: ImageFeatures) -> None:
        self._entries[frame_idx] = features
        self._entries.move_to_end(frame_idx)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class VideoState:
    """State of one video session (what the reference keeps in its `inference_state` dict).

    `num_frames` is None for live sources (cameras, generators).
    """

    source: FrameSource
    num_frames: int | None
    video_height: int
    video_width: int
    objects: ObjectRegistry
    features: FeatureCache

    @property
    def obj_ids(self) -> list[int]:
        return self.objects.ids
