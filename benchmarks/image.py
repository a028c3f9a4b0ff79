"""Image benchmark: masklet vs the reference (sam2==1.1.0) on the same random weights.

For each preset at 1024 px: median time of image encoding (`set_image`) and of `predict`
(one click, multi-mask) over >= 5 runs, fp32 and under CPU bfloat16 autocast, the ratio
masklet / reference measured in the same run, and the share of mask pixels on which masklet
bf16 agrees with masklet fp32. Run: `make bench-image` (or `python benchmarks/image.py`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import masklet
from masklet.runtime import autocast_for, cpu_has_native_bf16
from oracle import build_oracle, oracle_checkpoint, oracle_image_predictor

POINT = dict(point_coords=np.array([[300.0, 180.0]]), point_labels=np.array([1]))


def interleaved_medians(actions: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median seconds of each action; runs alternate between actions so that load changes on
    the machine hit all of them alike. One warm-up call each."""
    for action in actions.values():
        action()
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(runs):
        for name, action in actions.items():
            start = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def load_photo() -> np.ndarray:
    from importlib import resources

    from PIL import Image

    with resources.as_file(resources.files("masklet") / "assets" / "chelsea.jpg") as path:
        return np.asarray(Image.open(path).convert("RGB"))


def bench_preset(preset: str, image_size: int, runs: int, directory: str) -> None:
    image = load_photo()
    cpu = torch.device("cpu")
    oracle = oracle_image_predictor(build_oracle(preset, image_size))
    checkpoint = oracle_checkpoint(preset, image_size, directory)
    ours = masklet.SAM2ImagePredictor(
        masklet.build_sam2(preset, checkpoint=checkpoint, image_size=image_size)
    )
    predictors = {"masklet": ours, "reference": oracle}
    encode: dict[tuple[str, str], float] = {}
    predict: dict[tuple[str, str], float] = {}
    masks: dict[tuple[str, str], np.ndarray] = {}
    for label, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        with torch.inference_mode(), autocast_for(cpu, dtype):
            timed = interleaved_medians(
                {name: (lambda p=p: p.set_image(image)) for name, p in predictors.items()}, runs
            )
            encode.update({(name, label): value for name, value in timed.items()})
            for name, p in predictors.items():
                p.set_image(image)  # type: ignore[attr-defined]
                masks[(name, label)] = p.predict(**POINT)[0]  # type: ignore[attr-defined]
            timed = interleaved_medians(
                {name: (lambda p=p: p.predict(**POINT)) for name, p in predictors.items()}, runs
            )
            predict.update({(name, label): value for name, value in timed.items()})
    base = ("reference", "fp32")
    print(f"\n{preset} @ {image_size}px, {torch.get_num_threads()} threads, median of {runs}")
    print(
        f"{'impl':10} {'dtype':5} {'encode s':>9} {'/ref fp32':>9} {'/ref same':>9} "
        f"{'predict ms':>10} {'/ref fp32':>9} {'/ref same':>9} {'agree w/ masklet fp32':>22}"
    )
    for key in encode:
        impl, label = key
        same = ("reference", label)
        agree = float((masks[key] == masks[("masklet", "fp32")]).mean())
        print(
            f"{impl:10} {label:5} {encode[key]:9.3f} {encode[key] / encode[base]:9.2f} "
            f"{encode[key] / encode[same]:9.2f} {predict[key] * 1e3:10.1f} "
            f"{predict[key] / predict[base]:9.2f} {predict[key] / predict[same]:9.2f} "
            f"{agree:22.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["sam2.1_hiera_t", "sam2.1_hiera_b+"])
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"native bf16 matmul on this CPU (AMX/AVX512-BF16): {cpu_has_native_bf16()}")
    with tempfile.TemporaryDirectory() as directory:
        for preset in args.presets:
            bench_preset(preset, args.image_size, args.runs, directory)


if __name__ == "__main__":
    main()
