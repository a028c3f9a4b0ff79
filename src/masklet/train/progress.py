"""The progress bar of a training run: step, loss, clips per second and the ETA."""

from __future__ import annotations

from tqdm import tqdm


class Progress:
    """A tqdm bar over optimizer steps (nothing is drawn when `enabled` is False)."""

    def __init__(self, start: int, total: int, enabled: bool) -> None:
        self.bar = (
            tqdm(total=total, initial=start, unit="step", dynamic_ncols=True) if enabled else None
        )

    def update(self, loss: float, clips_per_s: float) -> None:
        if self.bar is None:
            return
        self.bar.set_postfix_str(f"loss {loss:.4f}, {clips_per_s:.2f} clips/s", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
