"""Progress display: a tqdm bar in a terminal, plain log lines otherwise (SageMaker, CI, files)."""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


def use_bar(mode: str) -> bool:
    return mode == "bar" or (mode == "auto" and sys.stderr.isatty())


class Progress:
    """Per-epoch step progress. ``update(n, **postfix)`` after each step; ``close()`` at the end."""

    def __init__(
        self, *, total: int, initial: int, desc: str, mode: str, log_every: int, enabled: bool
    ) -> None:
        self.total, self.done, self.desc, self.log_every = total, initial, desc, log_every
        self.enabled = enabled
        self._bar: Any = None
        if enabled and use_bar(mode):
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True
            )

    def update(self, n: int = 1, **postfix: float) -> None:
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
        elif self.done % self.log_every == 0 or self.done == self.total:
            details = " ".join(f"{k}={v:.4g}" for k, v in postfix.items())
            log.info("%s step %d/%d %s", self.desc, self.done, self.total, details)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
