"""`Laps`: the wall time of consecutive steps of a run."""

import time


class Laps:
    """Wall time of consecutive steps.

    `lap(name)` records, under `name`, the seconds since the previous lap
    (or since the `Laps` was made).

    Example:

    >>> laps = Laps()
    >>> laps.lap("load")
    >>> list(laps.seconds), laps.seconds["load"] >= 0
    (['load'], True)
    """

    def __init__(self):
        self.seconds = {}
        self._clock = time.perf_counter()

    def lap(self, name):
        now = time.perf_counter()
        self.seconds[name] = now - self._clock
        self._clock = now
