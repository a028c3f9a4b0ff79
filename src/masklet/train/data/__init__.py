"""The training data pipeline: readers of annotated videos and images, the clip sampler,
augmentation and the weighted, deterministic mix the training loop draws from.

    sources = [(open_source("mose", "data/MOSE"), 3.0), (open_source("synthetic"), 1.0)]
    data = TrainingData(sources, image_size=512, num_frames=8, max_objects=3,
                        reverse_time_prob=0.5, augment=AugmentOptions(), seed=0)
    clip = data.sample(123)          # TrainClip: images (T, 3, S, S) uint8, masks (T, K, S, S)

Sources: `DavisSource` (DAVIS, MOSE, SA-V val/test layouts), `SavSource` (SA-V training
layout), `Sa1bSource`, `CocoSource`, `SyntheticSource` (`masklet.bench` videos rendered on
the fly). Each is a `ClipSource`: `len()` videos, `video(i)` an `AnnotatedVideo`.
"""

from masklet.train.data.augment import AugmentOptions, augment_clip
from masklet.train.data.davis import DavisSource
from masklet.train.data.images import CocoSource, Sa1bSource
from masklet.train.data.mixer import SourceMixer, TrainingData, TrainingDataset, collate_clips
from masklet.train.data.sav import SavSource
from masklet.train.data.sources import SOURCE_KINDS, open_source
from masklet.train.data.synthetic import SyntheticSource
from masklet.train.data.video import AnnotatedVideo, ClipSampler, ClipSource, SampledClip

__all__ = [
    "SOURCE_KINDS",
    "AnnotatedVideo",
    "AugmentOptions",
    "ClipSampler",
    "ClipSource",
    "CocoSource",
    "DavisSource",
    "Sa1bSource",
    "SampledClip",
    "SavSource",
    "SourceMixer",
    "SyntheticSource",
    "TrainingData",
    "TrainingDataset",
    "augment_clip",
    "collate_clips",
    "open_source",
]
