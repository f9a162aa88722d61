"""The byte ranges of one file fetched over several connections: done, being fetched, waiting.

Plain Python, no Django, no I/O: the download engine's coordinator owns a `Plan` and is the only
thread that changes it (the prefix hasher reads `prefix`, a plain int).

Work is handed out in pieces, in file order, so what is done stays close to one contiguous
prefix that the sha256 can follow as it grows. When nothing is left to hand out, a connection
that is free takes the second half of the largest range still being fetched, so one slow
connection does not set the time the file finishes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

MAX_PIECE = 64 << 20


class Segment:
    """One connection's share: bytes [pos, end) are still to come (`end` shrinks when a free
    connection takes half of what is left)."""

    __slots__ = ("pos", "end")

    def __init__(self, start: int, end: int) -> None:
        self.pos = start
        self.end = end

    @property
    def left(self) -> int:
        return self.end - self.pos

    def __repr__(self) -> str:
        return f"Segment({self.pos}, {self.end})"


class Plan:
    """Which bytes of a file of `size` bytes are done, and who fetches the rest.

    piece: how much a connection is handed at a time; min_piece: no range smaller than this
    is split off a slow connection.
    """

    def __init__(self, size: int, done: Iterable[tuple[int, int]] = (), *, piece: int, min_piece: int) -> None:
        self.size = size
        self.piece = max(1, piece)
        self.min_piece = max(1, min_piece)
        self._starts: list[int] = []
        self._ends: list[int] = []
        self.done_bytes = 0
        self.prefix = 0
        for start, end in done:
            self._add_done(max(0, start), min(size, end))
        self.waiting: list[tuple[int, int]] = self._gaps()
        self.active: list[Segment] = []

    @staticmethod
    def piece_for(remaining: int, connections: int, min_piece: int) -> int:
        """About eight pieces per connection: small enough that the done part stays nearly
        contiguous, large enough that a request's round trip costs little."""
        return max(min_piece, min(MAX_PIECE, remaining // max(1, connections * 8)))

    @property
    def complete(self) -> bool:
        return self.done_bytes >= self.size

    def done(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends, strict=True))

    def take(self, end: int | None = None) -> Segment | None:
        """Work for a free connection: the next waiting piece (up to `end` if given: a request
        already made), else half of the largest range still being fetched; None when there is
        nothing worth taking."""
        if self.waiting:
            start, last = self.waiting[0]
            cut = min(last, start + self.piece if end is None else end)
            if cut == last:
                self.waiting.pop(0)
            else:
                self.waiting[0] = (cut, last)
            return self._activate(Segment(start, cut))
        victim = max(self.active, key=lambda segment: segment.left, default=None)
        if victim is None or victim.left < 2 * self.min_piece:
            return None
        cut = victim.pos + victim.left // 2
        stolen = Segment(cut, victim.end)
        victim.end = cut
        return self._activate(stolen)

    def wrote(self, segment: Segment, length: int) -> None:
        """`length` bytes at segment.pos are on disk."""
        self._add_done(segment.pos, segment.pos + length)
        segment.pos += length

    def release(self, segment: Segment) -> None:
        """The connection stops (finished, failed or stopped); what it left undone waits."""
        self.active.remove(segment)
        if segment.pos < segment.end:
            bisect.insort(self.waiting, (segment.pos, segment.end))

    def _activate(self, segment: Segment) -> Segment:
        self.active.append(segment)
        return segment

    def _add_done(self, start: int, end: int) -> None:
        if end <= start:
            return
        i = bisect.bisect_right(self._starts, start) - 1
        if i >= 0 and self._ends[i] >= start:  # touches or overlaps the range before
            start = self._starts[i]
        else:
            i += 1
        j = i
        covered = 0
        while j < len(self._starts) and self._starts[j] <= end:
            end = max(end, self._ends[j])
            covered += self._ends[j] - self._starts[j]
            j += 1
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]
        self.done_bytes += end - start - covered
        if self._starts[0] == 0:
            self.prefix = self._ends[0]

    def _gaps(self) -> list[tuple[int, int]]:
        gaps, position = [], 0
        for start, end in self.done():
            if start > position:
                gaps.append((position, start))
            position = end
        if position < self.size:
            gaps.append((position, self.size))
        return gaps
