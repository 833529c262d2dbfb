"""What a pull shows the caller, on stderr: a job's stdout is its data.

On a terminal, one line redrawn in place as the engine reports (layers done,
bytes, rate); otherwise one line when the pull starts and one when it ends,
so that a batch job's output file does not fill with progress.
"""

import time

_REDRAW_EVERY = 0.2  # seconds
_CLEAR_LINE = "\r\x1b[K"
_MB = 1e6


class PullProgress:
    """Fed the engine's progress messages (`update`), then told how the pull ended."""

    def __init__(self, shown, stream, live, clock=time.monotonic):
        self.shown, self.stream, self.live, self._clock = shown, stream, live, clock
        self._layers = {}  # layer id -> [bytes downloaded, total bytes or None, done]
        self._started = None
        self._drawn = None

    def update(self, message):
        if self._started is None:
            self._started = self._clock()
            if not self.live:
                self._say(f"socker: pulling {self.shown}\n")
        self._follow(message.get("status") or "", message.get("id"), message.get("progressDetail") or {})
        if self.live and (self._drawn is None or self._clock() - self._drawn >= _REDRAW_EVERY):
            self._drawn = self._clock()
            self._say(f"{_CLEAR_LINE}socker: pulling {self.shown}: {self.summary()}")

    def _follow(self, status, layer, detail):
        if layer is None or status.startswith("Pulling from"):
            return
        state = self._layers.setdefault(layer, [0, None, False])
        if status == "Downloading":
            state[0], state[1] = detail.get("current", state[0]), detail.get("total") or state[1]
        elif status in ("Verifying Checksum", "Download complete") and state[1]:
            state[0] = state[1]
        elif status in ("Pull complete", "Already exists"):
            state[2] = True

    def summary(self):
        """Layers done, bytes, rate: 2/3 layers, 12.4 of 40.0 MB, 6.2 MB/s."""
        done = sum(1 for _, _, finished in self._layers.values() if finished)
        current = sum(got for got, _, _ in self._layers.values())
        total = sum(size or 0 for _, size, _ in self._layers.values())
        elapsed = max(self._clock() - self._started, 1e-3)
        return (f"{done}/{len(self._layers)} layers, {current / _MB:.1f} of {total / _MB:.1f} MB, "
                f"{current / _MB / elapsed:.1f} MB/s")

    def finished(self, digest):
        if self._started is None:
            self._started = self._clock()
        downloaded = sum(got for got, _, _ in self._layers.values())
        self._say(f"{_CLEAR_LINE if self.live else ''}socker: pulled {self.shown} ({digest}, "
                  f"{downloaded / _MB:.1f} MB in {self._clock() - self._started:.1f} s)\n")

    def abandoned(self):
        """The pull failed: leave the line free for the reason."""
        if self.live and self._drawn is not None:
            self._say(_CLEAR_LINE)

    def _say(self, text):
        self.stream.write(text)
        self.stream.flush()
