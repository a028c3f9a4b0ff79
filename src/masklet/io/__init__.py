"""Layer 6 I/O: frame sources (video files, image folders, arrays, iterators, cameras), mask
formats (DAVIS indexed PNG, SA-V per-object PNG and JSON, COCO RLE) and video/overlay writing.

Frames are (H, W, 3) uint8 RGB numpy arrays; masks are (H, W) bool arrays keyed by object id.
See docs/formats.md for the formats and the behaviour of each source.
"""

from masklet.io.camera import CameraSource
from masklet.io.frames import ArraySource, FrameSource, IteratorSource, as_rgb_frame, frame_cache
from masklet.io.image_folder import ImageFolderSource
from masklet.io.masks import (
    labels_to_masks,
    list_object_pngs,
    masks_to_labels,
    object_png_path,
    read_indexed_png,
    read_object_png,
    read_object_pngs,
    voc_palette,
    write_indexed_png,
    write_object_pngs,
)
from masklet.io.rle import (
    compress_rle,
    empty_rle,
    mask_to_rle,
    mask_to_uncompressed_rle,
    masks_to_uncompressed_rles,
    rle_area,
    rle_to_mask,
)
from masklet.io.sav import (
    SavAnnotation,
    masklet_stats,
    read_sav_json,
    sav_annotation_from_masks,
    sav_from_json_dict,
    sav_to_json_dict,
    write_sav_json,
)
from masklet.io.sources import open_frame_source, read_frames
from masklet.io.video_file import VideoFileSource, VideoInfo, probe_video
from masklet.io.video_writer import (
    VideoWriter,
    mask_outline,
    object_color,
    overlay_masks,
    save_overlay_png,
)

__all__ = [
    "ArraySource",
    "CameraSource",
    "FrameSource",
    "ImageFolderSource",
    "IteratorSource",
    "SavAnnotation",
    "VideoFileSource",
    "VideoInfo",
    "VideoWriter",
    "as_rgb_frame",
    "compress_rle",
    "empty_rle",
    "frame_cache",
    "labels_to_masks",
    "list_object_pngs",
    "mask_outline",
    "mask_to_rle",
    "mask_to_uncompressed_rle",
    "masklet_stats",
    "masks_to_labels",
    "masks_to_uncompressed_rles",
    "object_color",
    "object_png_path",
    "open_frame_source",
    "overlay_masks",
    "probe_video",
    "read_frames",
    "read_indexed_png",
    "read_object_png",
    "read_object_pngs",
    "read_sav_json",
    "rle_area",
    "rle_to_mask",
    "sav_annotation_from_masks",
    "sav_from_json_dict",
    "sav_to_json_dict",
    "save_overlay_png",
    "voc_palette",
    "write_indexed_png",
    "write_object_pngs",
    "write_sav_json",
]
