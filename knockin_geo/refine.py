"""Refine a cut turf by turf: one walkable piece, balance, then compactness.

The spanning-tree bisection (:mod:`knockin_geo.turfs`) gives balanced turfs that are connected on
the street-side graph, but the graph lets a turf reach its doors along the empty side of a street
whose other side is another turf's, and the cut lines it draws are as crooked as the random trees
they come from. This pass moves doors between neighbouring turfs of one area (a precinct) along
*strict* street sides (:class:`knockin_geo.sidegraph.StrictChains`: a volunteer walks a street side
past their own doors only, and passes freely only streets without any door) and judges each move
lexicographically:

1. the turfs' strict pieces (fewer is better; a move may join a stray piece to a neighbour when
   both turfs stay within the tolerance or the excess does not grow);
2. balance: the total excess of turf weights beyond the tolerance (never grows otherwise);
3. compactness: the doors' squared distances to their turf's centroid (k-means' objective),
   between *tangled* turfs (two turfs of the area whose door hulls overlap by more than
   ``untangle`` of either) or, with ``compact``, between any two.

Moves are single doors at the boundary between two turfs on one chain, and whole runs (a turf's
consecutive doors on a chain) or a run's end door handed to the turf next to them on the chain
or, at a junction, to a turf that holds one of the run's nearest doors. A door never joins a
turf that has no door in its *region* (its side of every barrier, from the cutter's side
graph), and no move leaves a turf's door hull cut in two by a barrier line when it was not
before (the report's rule). A round judges every move around the turfs that need one (stray
pieces, out of tolerance, tangled; every turf with ``compact``), then applies them best first,
each judged again on the state the earlier ones left (the barrier test, the costly one, only
then); rounds stop when no move improves (the order is strict, so it ends) or after
``max_rounds``. When no single move is left, a move that joins a stray piece to a neighbour
but would take a turf out of the tolerance is paired with a second one that keeps the balance
(:meth:`_Context._mend_pieces`). A move never empties a turf. Deterministic: ties go to the
lowest door and turf numbers. Work is kept from round to round where it cannot have changed: a
judgement until either turf changes, a turf's barrier span until it changes, and a chain's offers
until its doors' labels, their nearest doors' labels or its junctions' turfs do.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import shapely
from scipy.spatial import cKDTree

from knockin_geo.sidegraph import StrictChains

#: A compactness move must lower the squared distances by at least this (m^2).
MIN_GAIN_M2 = 1.0
#: A run may join a turf at its junction only if that turf holds one of the run's end doors'
#: nearest doors (a junction of door-free streets can reach across a town).
NEAR_DOORS = 12
#: With ``untangle``: two turfs whose door hulls overlap by more than this share of either hull
#: are made rounder too, by moves between them (issue 14's aim for the hull overlap between the
#: turfs of an area).
UNTANGLE_SHARE = 0.05
#: Rounds of moves per area at most.
MAX_ROUNDS = 400
#: Barrier lines are clipped around a hull to boxes on this grid (m), shared by nearby hulls.
_CLIP_GRID_M = 50.0
#: Judgements kept per door before the stale ones (of turfs changed since) are dropped.
_MEMO_PER_DOOR = 8


@dataclass(frozen=True)
class AreaDoors:
    """One area's doors as the refinement needs them (local numbering ``0..n-1``)."""

    chain: np.ndarray
    pos: np.ndarray
    weight: np.ndarray
    xy: np.ndarray
    region: np.ndarray


@dataclass
class _Turfs:
    """Running sums per turf and the positions of each turf's doors on each chain."""

    weight: np.ndarray
    count: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    sq: np.ndarray
    regions: list[Counter[int]]
    on_chain: list[dict[int, list[int]]] = field(default_factory=list)


@dataclass(frozen=True)
class _Move:
    """Doors handed from turf ``src`` to turf ``dst``, with the key that ranks the move."""

    key: tuple[int, float, float, int, int, int]
    doors: tuple[int, ...]
    src: int
    dst: int


def refine_area(
    part: np.ndarray,
    doors: AreaDoors,
    chains: StrictChains,
    target: float,
    tol: float,
    barrier: shapely.Geometry | None = None,
    *,
    buffer_m: float = 3.0,
    compact: bool = False,
    untangle: float | None = None,
    max_rounds: int = MAX_ROUNDS,
) -> np.ndarray:
    """Return improved turf labels for one area (same turf numbers, none emptied).

    ``barrier``: the barrier lines near the area, each ``buffer_m`` wide on either side (a move
    never leaves a turf's door hull cut in two by them that was not before). ``compact``: also
    move doors to lower the squared distances to the turfs' centroids (slower). ``untangle``:
    do so between two turfs whose door hulls overlap by more than this share of either.
    """
    lab = part.astype(np.int64).copy()
    if len(lab) < 2 or int(lab.max()) < 1:
        return lab
    lines = None if barrier is None else _Lines.of(barrier, buffer_m)
    ctx = _Context(doors, chains, target, tol, lab, lines, compact=compact, untangle=untangle)
    for _ in range(max_rounds):
        if ctx.run_round() == 0:
            break
    return lab


class _Context:
    """One area: its fixed data, the current labels and sums, and the judging of moves."""

    def __init__(
        self, doors: AreaDoors, chains: StrictChains, target: float, tol: float,
        lab: np.ndarray, barrier: _Lines | None, *, compact: bool, untangle: float | None,
    ) -> None:
        self.d = doors
        self.lab = lab
        self.target = target
        self.tol = tol
        self.compact = compact
        self.untangle = untangle
        self.barrier = barrier
        self.ln = chains.chain_len[doors.chain]
        self.ju = chains.chain_ju[doors.chain]
        self.jv = chains.chain_jv[doors.chain]
        self.sq = (doors.xy**2).sum(axis=1)
        self.region: list[int] = doors.region.tolist()
        self.chain_l: list[int] = doors.chain.tolist()
        self.pos_l: list[int] = doors.pos.tolist()
        self.door_at = {(c, p): i for i, (c, p) in enumerate(zip(self.chain_l, self.pos_l,
                                                                  strict=True))}
        k_near = min(NEAR_DOORS, len(doors.xy))
        self.near = cKDTree(doors.xy).query(doors.xy, k=k_near)[1].reshape(len(doors.xy), -1)
        self.near_l: list[list[int]] = self.near.tolist()
        order = np.lexsort((doors.pos, doors.chain))
        sc = doors.chain[order]
        bounds = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1], True])
        self.by_chain = [order[bounds[i]:bounds[i + 1]] for i in range(len(bounds) - 1)]
        self.slot_of = {int(sc[bounds[i]]): i for i in range(len(bounds) - 1)}
        self.door_order, self.slot_start = order, bounds[:-1]
        firsts = order[bounds[:-1]]
        # each chain's two junctions and length, by chain number (plain ints: read per run)
        self.chain_ends = {int(c): (int(u), int(v), int(n)) for c, u, v, n in zip(
            sc[bounds[:-1]], self.ju[firsts], self.jv[firsts], self.ln[firsts], strict=True)}
        self.slots_at: dict[int, list[int]] = {}
        for i, slot in enumerate(self.by_chain):
            for j in {int(self.ju[slot[0]]), int(self.jv[slot[0]])}:
                self.slots_at.setdefault(j, []).append(i)
        self.door_slot = np.zeros(len(doors.xy), dtype=np.int64)
        for i, slot in enumerate(self.by_chain):
            self.door_slot[slot] = i
        # a chain's offers read the labels of its doors' nearest doors too
        self.near_door = self.near.ravel()
        self.near_slot = np.repeat(self.door_slot, self.near.shape[1])
        self.slot_offers: dict[int, dict[tuple[tuple[int, ...], int], int]] = {}
        self.seen_lab = self.lab.copy()
        self.st = self._sums()
        self.member_sets: list[set[int]] = [set() for _ in range(len(self.st.weight))]
        for i, t in enumerate(self.lab.tolist()):
            self.member_sets[t].add(i)
        # the turfs holding a chain's end door at each junction, kept up to date by apply
        self.ends: dict[int, Counter[int]] = {}
        for t, on in enumerate(self.st.on_chain):
            for c, positions in on.items():
                ju, jv, ln = self.chain_ends[c]
                if positions[0] == 0:
                    self.ends.setdefault(ju, Counter())[t] += 1
                if positions[-1] == ln - 1:
                    self.ends.setdefault(jv, Counter())[t] += 1
        self.at_junction = {j: set(cnt) for j, cnt in self.ends.items()}
        self.moved_ends: set[int] = set()
        # tangled pairs (both ways), as partners per turf and as codes src * k + dst
        self.partners: dict[int, set[int]] = {}
        self.pair_codes = np.zeros(0, dtype=np.int64)
        self.tangle_seen = np.full(len(self.st.weight), -1, dtype=np.int64)
        self.att: dict[int, Counter[tuple[int, int]]] = {}
        self.n_pieces: dict[int, int] = {}
        self.hulls: dict[int, shapely.Geometry] = {}
        self.spanning: dict[int, int] = {}
        self.parts: dict[int, tuple[np.ndarray, np.ndarray] | None] = {}
        # a move's judgement depends on its two turfs only: kept until either changes
        self.version = np.zeros(int(lab.max()) + 1, dtype=np.int64)
        self.judged: dict[tuple[Any, ...], _Move | None] = {}
        self.span_ok: dict[tuple[Any, ...], bool] = {}
        self.wanted = np.zeros(0, dtype=bool)
        self.off_size = np.zeros(0, dtype=bool)

    # --- state -----------------------------------------------------------------------------
    def _sums(self) -> _Turfs:
        lab = self.lab
        k = int(lab.max()) + 1
        st = _Turfs(
            np.bincount(lab, weights=self.d.weight, minlength=k),
            np.bincount(lab, minlength=k).astype(float),
            np.bincount(lab, weights=self.d.xy[:, 0], minlength=k),
            np.bincount(lab, weights=self.d.xy[:, 1], minlength=k),
            np.bincount(lab, weights=self.sq, minlength=k),
            [Counter() for _ in range(k)],
            [{} for _ in range(k)],
        )
        for i in range(len(lab)):
            t = int(lab[i])
            st.regions[t][int(self.d.region[i])] += 1
            st.on_chain[t].setdefault(int(self.d.chain[i]), []).append(int(self.d.pos[i]))
        for chains in st.on_chain:
            for positions in chains.values():
                positions.sort()
        return st

    def run_round(self) -> int:
        """Judge the moves around the turfs that need one, apply the best; return how many."""
        if len(self.judged) > _MEMO_PER_DOOR * len(self.lab):  # forget judgements now stale
            v = self.version
            self.judged = {k: j for k, j in self.judged.items()
                           if v[k[1]] == k[3] and v[k[2]] == k[4]}
            self.span_ok = {k: j for k, j in self.span_ok.items() if k in self.judged}
        applied = 0
        for mv in self.candidates():
            if any(self.lab[i] != mv.src for i in mv.doors):
                continue
            now = self.judge(mv.doors, mv.src, mv.dst, spans=True)
            if now is None or now.key[0] > mv.key[0]:
                continue
            self.apply(mv)
            applied += 1
        if applied == 0:
            applied = self._mend_pieces()
        return applied

    def apply(self, mv: _Move) -> None:
        """Hand ``mv.doors`` from ``mv.src`` to ``mv.dst`` and update the sums."""
        st = self.st
        idx = np.array(mv.doors)
        self.version[[mv.src, mv.dst]] += 1
        for t, sign in ((mv.src, -1.0), (mv.dst, 1.0)):
            st.weight[t] += sign * float(self.d.weight[idx].sum())
            st.count[t] += sign * len(idx)
            st.sx[t] += sign * float(self.d.xy[idx, 0].sum())
            st.sy[t] += sign * float(self.d.xy[idx, 1].sum())
            st.sq[t] += sign * float(self.sq[idx].sum())
            for cache in (self.att, self.n_pieces, self.hulls, self.spanning, self.parts):
                cache.pop(t, None)
        for i in mv.doors:
            r, c, p = int(self.d.region[i]), int(self.d.chain[i]), int(self.d.pos[i])
            ju, jv, ln = self.chain_ends[c]
            if p == 0:
                self._hand_end(ju, mv.src, mv.dst)
            if p == ln - 1:
                self._hand_end(jv, mv.src, mv.dst)
            st.regions[mv.src][r] -= 1
            if st.regions[mv.src][r] == 0:
                del st.regions[mv.src][r]
            st.regions[mv.dst][r] += 1
            st.on_chain[mv.src][c].remove(p)
            if not st.on_chain[mv.src][c]:
                del st.on_chain[mv.src][c]
            st.on_chain[mv.dst].setdefault(c, []).append(p)
            st.on_chain[mv.dst][c].sort()
            self.lab[i] = mv.dst
            self.member_sets[mv.src].discard(i)
            self.member_sets[mv.dst].add(i)

    def _hand_end(self, j: int, src: int, dst: int) -> None:
        """Record that a chain's end door at junction ``j`` went from ``src`` to ``dst``."""
        cnt, there = self.ends.setdefault(j, Counter()), self.at_junction.setdefault(j, set())
        cnt[src] -= 1
        if cnt[src] == 0:
            del cnt[src]
            there.discard(src)
            self.moved_ends.add(j)
        cnt[dst] += 1
        if cnt[dst] == 1:
            there.add(dst)
            self.moved_ends.add(j)

    # --- stray pieces joined by two moves -------------------------------------------------
    def _mend_pieces(self) -> int:
        """Join a stray piece to a neighbour, with a second move that keeps the balance.

        When no single move joins a turf's stray piece because a turf would leave the tolerance
        (the one giving it, at its lower bound, or the one taking it, at its upper bound), the
        move is paired with one that gives the first turf doors, or takes the second's on to a
        third. The pair is kept when its turfs end with fewer strict pieces and no more excess,
        and no door hull comes to be cut by a barrier line.
        """
        applied = 0
        for t in range(len(self.st.weight)):
            if self.pieces(t) < 2:
                continue
            for m1 in self._offers_of(t, src=t):
                if self.pieces_after(t, [], list(m1.doors)) < self.pieces(t) and self._pair(m1):
                    applied += 1
                    break
        return applied

    def _offers_of(self, t: int, *, src: int | None = None,
                   dst: int | None = None) -> list[_Move]:
        """List the moves offered on turf ``t``'s chains out of ``src`` or into ``dst``."""
        offers: dict[tuple[tuple[int, ...], int], int] = {}
        for c in sorted(self.st.on_chain[t]):
            self._chain_offers(self.by_chain[self.slot_of[c]], self.at_junction, offers)
        out = []
        for (doors, d), s in sorted(offers.items()):
            wanted = (src is None or s == src) and (dst is None or d == dst)
            if wanted and self._allowed(doors, s, d):
                out.append(_Move((0, 0.0, 0.0, doors[0], d, s), doors, s, d))
        return out

    def _pair(self, m1: _Move) -> bool:
        """Apply ``m1`` and the best second move (:meth:`_mend_pieces`); False: neither."""
        if self.adds_span(m1.doors, m1.src, m1.dst):
            return False
        base = {t: (self._excess_of(t), self.pieces(t)) for t in (m1.src, m1.dst)}
        self.apply(m1)
        best: tuple[tuple[float, ...], _Move] | None = None
        for m2 in self._offers_of(m1.src, dst=m1.src) + self._offers_of(m1.dst, src=m1.dst):
            if set(m2.doors) & set(m1.doors) or any(self.lab[i] != m2.src for i in m2.doors):
                continue
            rank = self._pair_rank(base, m2)
            if rank is not None and (best is None or (rank, m2.key) < (best[0], best[1].key)):
                best = (rank, m2)
        if best is None:
            self.apply(_Move(m1.key, m1.doors, m1.dst, m1.src))
            return False
        self.apply(best[1])
        return True

    def _pair_rank(self, base: dict[int, tuple[float, int]], m2: _Move) -> tuple[float, ...] | None:
        """Rank the first move (applied) with ``m2``; None: the pair does not improve."""
        turfs = sorted(base.keys() | {m2.src, m2.dst})
        w = float(self.d.weight[list(m2.doors)].sum())
        dw = {m2.src: -w, m2.dst: w}
        before = [base[t] if t in base else (self._excess_of(t), self.pieces(t)) for t in turfs]
        ex1 = [_excess(self.st.weight[t] + dw.get(t, 0.0), self.target, self.tol) for t in turfs]
        if sum(ex1) > sum(b[0] for b in before) + 1e-12:
            return None
        after = {m2.src: self.pieces_after(m2.src, [], list(m2.doors)),
                 m2.dst: self.pieces_after(m2.dst, list(m2.doors), [])}
        d_pieces = sum(after.get(t, self.pieces(t)) for t in turfs) - sum(b[1] for b in before)
        if d_pieces >= 0 or self.adds_span(m2.doors, m2.src, m2.dst):
            return None
        idx = np.array(m2.doors, dtype=np.int64)
        return (float(d_pieces), sum(ex1), self._sse_change(idx, m2.src, m2.dst))

    def _excess_of(self, t: int) -> float:
        """Return turf ``t``'s excess beyond the tolerance now (:func:`_excess`)."""
        return _excess(self.st.weight[t], self.target, self.tol)

    # --- pieces ----------------------------------------------------------------------------
    def _runs(self, c: int, positions: list[int]) -> list[tuple[int, int]]:
        """Junctions each run of ``positions`` on chain ``c`` touches (-1: none)."""
        if not positions:
            return []
        first = int(self.by_chain[self.slot_of[c]][0])
        ln, ju, jv = int(self.ln[first]), int(self.ju[first]), int(self.jv[first])
        out = []
        start = prev = positions[0]
        for p in [*positions[1:], None]:
            if p is not None and p == prev + 1:
                prev = p
                continue
            out.append((ju if start == 0 else -1, jv if prev == ln - 1 else -1))
            if p is not None:
                start = prev = p
        return out

    def attachments(self, t: int) -> Counter[tuple[int, int]]:
        """Return turf ``t``'s runs counted by the junctions they touch (cached)."""
        if t not in self.att:
            out: Counter[tuple[int, int]] = Counter()
            for c, positions in self.st.on_chain[t].items():
                out.update(self._runs(c, positions))
            self.att[t] = out
        return self.att[t]

    def pieces(self, t: int) -> int:
        """Return turf ``t``'s strict pieces now (cached)."""
        if t not in self.n_pieces:
            self.n_pieces[t] = _count_pieces(self.attachments(t))
        return self.n_pieces[t]

    def pieces_after(self, t: int, gain: list[int], lose: list[int]) -> int:
        """Return turf ``t``'s strict pieces once it gains and loses these doors."""
        override: dict[int, list[int]] = {}
        for i in gain + lose:
            c = int(self.d.chain[i])
            override.setdefault(c, list(self.st.on_chain[t].get(c, [])))
        for i in lose:
            override[int(self.d.chain[i])].remove(int(self.d.pos[i]))
        for i in gain:
            override[int(self.d.chain[i])].append(int(self.d.pos[i]))
        delta: Counter[tuple[int, int]] = Counter()
        for c, after in override.items():
            delta.subtract(self._runs(c, self.st.on_chain[t].get(c, [])))
            delta.update(self._runs(c, sorted(after)))
        att = self.attachments(t)
        if all(k == (-1, -1) or n == 0 or (att[k] > 0 and att[k] + n > 0)
               for k, n in delta.items()):
            # the same junctions joined by runs: only the loose runs change in number
            return self.pieces(t) + delta[(-1, -1)]
        att = Counter(att)
        att.update(delta)
        return _count_pieces(att)

    # --- candidates ------------------------------------------------------------------------
    def candidates(self) -> list[_Move]:
        """Every improving move around the turfs that need one, best first."""
        st = self.st
        k = len(st.weight)
        self.off_size = np.abs(st.weight / self.target - 1) > self.tol + 1e-12
        loose = np.array([self.pieces(t) > 1 for t in range(k)])
        rounds = np.ones(k, dtype=bool) if self.compact else np.zeros(k, dtype=bool)
        if self.untangle is not None and not self.compact:
            self._tangled(self.untangle)
            rounds[list(self.partners)] = True
        self.wanted = rounds | self.off_size | loose
        focus = np.flatnonzero(self.wanted | self.off_size).tolist()
        at_junction = self._junction_turfs()
        # the focus turfs' chains, and the chains that end where a focus turf reaches
        meet = self._junctions_of(focus)
        close = np.zeros(len(self.lab), dtype=bool)  # doors among a focus turf's doors' nearest
        close[self.near[np.isin(self.lab, focus)].ravel()] = True
        slot_close = np.maximum.reduceat(close[self.door_order], self.slot_start).tolist()
        slots = sorted({self.slot_of[c] for t in focus for c in st.on_chain[t]}
                       | {i for j in meet for i in self.slots_at.get(j, []) if slot_close[i]})
        self._forget_stale_offers(at_junction)
        offers: dict[tuple[tuple[int, ...], int], int] = {}
        for i in slots:
            got = self.slot_offers.get(i)
            if got is None:
                got = self.slot_offers[i] = {}
                self._chain_offers(self.by_chain[i], at_junction, got)
            offers.update(got)
        items = sorted(offers.items())
        worth = self._worth_judging(items)
        moves = [mv for ((doors, dst), src), ok in zip(items, worth, strict=True)
                 if ok and (mv := self._offer(doors, src, dst)) is not None]
        moves.sort(key=lambda m: m.key)
        return moves

    def _tangled(self, share: float) -> None:
        """Find the pairs of turfs whose door hulls overlap by more than ``share`` of either.

        Kept from round to round: only the pairs with a turf changed since are measured again.
        """
        k = len(self.st.weight)
        changed = np.flatnonzero(self.version != self.tangle_seen)
        if len(changed) == 0:
            return
        for t in changed.tolist():
            for u in self.partners.pop(t, set()):
                self.partners.get(u, set()).discard(t)
        hulls = np.array([self._hull(t) for t in range(k)], dtype=object)
        c_at, b = shapely.STRtree(hulls).query(hulls[changed], predicate="intersects")
        a = changed[c_at]
        a, b = a[a != b], b[a != b]
        area = shapely.area(hulls)
        common = shapely.area(shapely.intersection(hulls[a], hulls[b]))
        over = common > share * np.minimum(area[a], area[b])
        for t, u in zip(a[over].tolist(), b[over].tolist(), strict=True):
            self.partners.setdefault(t, set()).add(u)
            self.partners.setdefault(u, set()).add(t)
        self.partners = {t: us for t, us in self.partners.items() if us}
        self.pair_codes = np.sort(np.array(
            [t * k + u for t, us in self.partners.items() for u in us], dtype=np.int64))
        self.tangle_seen = self.version.copy()

    def _rounds(self, src: int, dst: int) -> bool:
        """Whether moves between ``src`` and ``dst`` may make them rounder."""
        return self.compact or dst in self.partners.get(src, ())

    def _worth_judging(self, items: list[tuple[tuple[tuple[int, ...], int], int]]) -> np.ndarray:
        """Which offers ``((doors, dst), src)`` :meth:`_judge` might rank, tested all at once.

        The balance and compactness terms in arrays, with a margin for the order of the sums
        (a run's doors), so that no offer :meth:`_judge` would rank is left out: only offers
        that lower the excess, make two turfs rounder, or keep the balance where either turf
        is in pieces are judged one by one.
        """
        if not items:
            return np.zeros(0, dtype=bool)
        st = self.st
        src = np.array([s for _, s in items], dtype=np.int64)
        dst = np.array([d for (_, d), _ in items], dtype=np.int64)
        runs = [doors for (doors, _), _ in items]
        lens = np.array([len(r) for r in runs], dtype=np.int64)
        flat = np.fromiter((i for r in runs for i in r), dtype=np.int64, count=int(lens.sum()))
        at = np.r_[0, np.cumsum(lens)[:-1]]
        w, mx, my, q = (np.add.reduceat(a[flat], at)
                        for a in (self.d.weight, self.d.xy[:, 0], self.d.xy[:, 1], self.sq))
        ex0 = _excess_of(st.weight[src], self.target, self.tol), _excess_of(
            st.weight[dst], self.target, self.tol)
        ex1 = _excess_of(st.weight[src] - w, self.target, self.tol), _excess_of(
            st.weight[dst] + w, self.target, self.tol)
        d_excess = ex1[0] + ex1[1] - ex0[0] - ex0[1]
        slack = 1e-9
        kept = (np.maximum(ex1[0], ex1[1]) <= slack) | (d_excess <= 1e-12 + slack)
        keep = d_excess < -1e-12 + slack
        pieces = np.array([self.pieces(t) for t in range(len(st.weight))])
        keep |= kept & ((pieces[src] > 1) | (pieces[dst] > 1))
        k = len(st.weight)
        rounds = (np.ones(len(items), dtype=bool) if self.compact
                  else np.isin(src * k + dst, self.pair_codes))
        if rounds.any():
            n = lens.astype(float)
            d_sse = (_sse_of(st.count[src] - n, st.sx[src] - mx, st.sy[src] - my, st.sq[src] - q)
                     + _sse_of(st.count[dst] + n, st.sx[dst] + mx, st.sy[dst] + my,
                               st.sq[dst] + q)
                     - _sse_of(st.count[src], st.sx[src], st.sy[src], st.sq[src])
                     - _sse_of(st.count[dst], st.sx[dst], st.sy[dst], st.sq[dst]))
            margin = 64.0 + 1e-13 * (np.abs(st.sq[src]) + np.abs(st.sq[dst]))
            keep |= (rounds
                     & (d_sse < -MIN_GAIN_M2 + margin) & (ex1[0] <= ex0[0] + 1e-12 + slack)
                     & (ex1[1] <= ex0[1] + 1e-12 + slack))
        return keep

    def _junctions_of(self, turfs: list[int]) -> set[int]:
        """Return the junctions where any of ``turfs`` holds a chain's end door."""
        out: set[int] = set()
        for t in turfs:
            for c, positions in self.st.on_chain[t].items():
                ju, jv, ln = self.chain_ends[c]
                if positions[0] == 0:
                    out.add(ju)
                if positions[-1] == ln - 1:
                    out.add(jv)
        return out

    def _forget_stale_offers(self, at_junction: dict[int, set[int]]) -> None:
        """Drop the kept offers of the chains whose offers may have changed since the last round.

        A chain's offers (:meth:`_chain_offers`) read the labels of its doors and of their
        nearest doors, and the turfs at its two junctions: a chain none of these changed for
        offers the same moves again.
        """
        changed = np.flatnonzero(self.lab != self.seen_lab)
        stale = set(self.door_slot[changed].tolist())
        if len(changed):
            stale.update(self.near_slot[np.isin(self.near_door, changed)].tolist())
        for j in self.moved_ends:
            stale.update(self.slots_at.get(j, []))
        for i in stale:
            self.slot_offers.pop(i, None)
        self.seen_lab = self.lab.copy()
        self.moved_ends = set()

    def _chain_offers(
        self, slot: np.ndarray, at_junction: dict[int, set[int]],
        offers: dict[tuple[tuple[int, ...], int], int],
    ) -> None:
        """Offer the boundary doors and the whole runs of one chain to their neighbours.

        The offers are kept between rounds: whatever this (and :meth:`_run_targets`) comes to
        read must also make :meth:`_forget_stale_offers` drop them when it changes.
        """
        pos, tl = self.d.pos[slot], self.lab[slot]
        for i in np.flatnonzero((np.diff(pos) == 1) & (tl[1:] != tl[:-1])).tolist():
            offers[((int(slot[i]),), int(tl[i + 1]))] = int(tl[i])
            offers[((int(slot[i + 1]),), int(tl[i]))] = int(tl[i + 1])
        brk = (np.flatnonzero((np.diff(pos) != 1) | (tl[1:] != tl[:-1])) + 1).tolist()
        slot_l, tl_l = slot.tolist(), tl.tolist()
        for a, b in zip([0, *brk], [*brk, len(slot_l)], strict=True):
            run, t = tuple(slot_l[a:b]), tl_l[a]
            for u in self._run_targets(run, at_junction) - {t}:
                offers[(run, u)] = t
            if len(run) > 1:  # a run's end door alone, to a turf at that end's junction
                for end in (run[0], run[-1]):
                    for u in self._run_targets((end,), at_junction) - {t}:
                        offers[((end,), u)] = t

    def _run_targets(self, run: tuple[int, ...], at_junction: dict[int, set[int]]) -> set[int]:
        """Turfs a run may join: next to it on its chain, or at its junction and nearby."""
        f, g = run[0], run[-1]
        c = self.chain_l[f]
        ju, jv, ln = self.chain_ends[c]
        dst: set[int] = set()
        if self.pos_l[f] == 0:
            dst |= at_junction.get(ju, set())
        if self.pos_l[g] == ln - 1:
            dst |= at_junction.get(jv, set())
        lab = self.lab
        if dst:
            # a junction of door-free streets may reach far: only the turfs around the run
            dst &= {int(lab[i]) for i in self.near_l[f]} | {int(lab[i]) for i in self.near_l[g]}
        for end, step in ((f, -1), (g, 1)):
            nxt = self.door_at.get((c, self.pos_l[end] + step))
            if nxt is not None:
                dst.add(int(lab[nxt]))
        return dst

    def _junction_turfs(self) -> dict[int, set[int]]:
        """Return the turfs whose runs reach each junction (kept up to date by :meth:`apply`)."""
        return self.at_junction

    def _offer(self, doors: tuple[int, ...], src: int, dst: int) -> _Move | None:
        if not (self.wanted[src] or self.off_size[dst]) or not self._allowed(doors, src, dst):
            return None
        return self.judge(doors, src, dst)

    def _allowed(self, doors: tuple[int, ...], src: int, dst: int) -> bool:
        """Whether the move may be made at all.

        It leaves ``src`` a door, and ``dst`` holds a door in each moved door's region (its side
        of every barrier).
        """
        if src == dst or self.st.count[src] <= len(doors):
            return False
        regions = self.st.regions[dst]
        return all(self.region[i] in regions for i in doors)

    # --- judging ---------------------------------------------------------------------------
    def judge(self, doors: tuple[int, ...], src: int, dst: int, *,
              spans: bool = False) -> _Move | None:
        """Rank a move (see the module docstring); None when it does not improve.

        ``spans``: also refuse a move that leaves a door hull cut in two by a barrier line
        (the costly test, made only on the moves about to be applied). A judgement depends on
        the two turfs only, so it is kept until either of them changes.
        """
        memo = (doors, src, dst, int(self.version[src]), int(self.version[dst]),
                self._rounds(src, dst))
        if memo not in self.judged:
            self.judged[memo] = self._judge(doors, src, dst)
        mv = self.judged[memo]
        if mv is None or not spans:
            return mv
        if memo not in self.span_ok:
            self.span_ok[memo] = not self.adds_span(doors, src, dst)
        return mv if self.span_ok[memo] else None

    def _judge(self, doors: tuple[int, ...], src: int, dst: int) -> _Move | None:
        st = self.st
        if st.count[src] <= len(doors):
            return None  # a move never empties a turf
        idx = np.array(doors, dtype=np.int64)
        w = float(self.d.weight[idx].sum())
        ex0 = [_excess(st.weight[t], self.target, self.tol) for t in (src, dst)]
        ex1 = [_excess(st.weight[src] - w, self.target, self.tol),
               _excess(st.weight[dst] + w, self.target, self.tol)]
        d_excess = sum(ex1) - sum(ex0)
        d_sse = self._sse_change(idx, src, dst)
        kept = max(ex1) == 0.0 or d_excess <= 1e-12
        balance = d_excess < -1e-12
        rounder = (self._rounds(src, dst) and d_sse < -MIN_GAIN_M2
                   and all(b <= a + 1e-12 for a, b in zip(ex0, ex1, strict=True)))
        if not (balance or rounder) and (
                not kept or (self.pieces(src) == 1 and self.pieces(dst) == 1)):
            return None  # fewer pieces is all it could offer, and two whole turfs stay whole
        d_pieces = (self.pieces_after(src, [], list(doors))
                    + self.pieces_after(dst, list(doors), [])
                    - self.pieces(src) - self.pieces(dst))
        if d_pieces < 0 and kept:
            key = (0, float(d_pieces), d_sse)
        elif d_pieces <= 0 and balance:
            key = (1, d_excess, d_sse)
        elif d_pieces <= 0 and rounder:
            key = (2, d_sse, 0.0)
        else:
            return None
        return _Move((*key, doors[0], dst, src), doors, src, dst)

    def _sse_change(self, idx: np.ndarray, src: int, dst: int) -> float:
        st = self.st
        n = float(len(idx))
        mx, my = float(self.d.xy[idx, 0].sum()), float(self.d.xy[idx, 1].sum())
        q = float(self.sq[idx].sum())
        before = (_sse(st.count[src], st.sx[src], st.sy[src], st.sq[src])
                  + _sse(st.count[dst], st.sx[dst], st.sy[dst], st.sq[dst]))
        after = (_sse(st.count[src] - n, st.sx[src] - mx, st.sy[src] - my, st.sq[src] - q)
                 + _sse(st.count[dst] + n, st.sx[dst] + mx, st.sy[dst] + my, st.sq[dst] + q))
        return after - before

    # --- barriers --------------------------------------------------------------------------
    def adds_span(self, doors: tuple[int, ...], src: int, dst: int) -> bool:
        """Whether the move leaves a turf's door hull cut in two by a barrier line."""
        if self.barrier is None:
            return False
        moved = set(doors)
        xy = self.d.xy[list(doors)]
        for t in (src, dst):
            hull: Any = self._hull(t)
            if t == src and not self._on_hull(t, xy):
                continue  # the same hull: its parts hold fewer doors, never more
            if t == dst and shapely.contains_xy(hull, xy[:, 0], xy[:, 1]).all():
                if self._spans_now(t):
                    continue
                if self._holding_after(t, xy) > 1:
                    return True
                continue  # the same hull, with doors in the parts they fall in
            if t == dst:
                pts = np.vstack([shapely.get_coordinates(hull), xy])
                hull = shapely.convex_hull(shapely.multipoints(pts))
            if not self.barrier.meets(hull):
                continue  # a hull that only shrinks or misses every line stays whole
            if self._spans_now(t):
                continue  # spanning already: a move cannot make it span more
            now = self._members(t)
            after = (np.array(sorted(set(now.tolist()) - moved), dtype=np.int64) if t == src
                     else np.union1d(now, np.array(doors, dtype=np.int64)))
            if self._spans(after):
                return True
        return False

    def _on_hull(self, t: int, xy: np.ndarray) -> bool:
        """Whether any of the points ``xy`` is a corner of turf ``t``'s door hull."""
        corners = shapely.get_coordinates(self._hull(t))
        return bool((corners[:, None, :] == xy[None, :, :]).all(axis=2).any())

    def _holding_after(self, t: int, xy: np.ndarray) -> int:
        """Count the parts of turf ``t``'s hull minus the lines holding its doors or ``xy``."""
        got = self._parts(t)
        if got is None:
            return 1
        parts, held = got
        new = np.array([shapely.intersects_xy(p, xy[:, 0], xy[:, 1]).any() for p in parts])
        return int((held | new).sum())

    def _spans_now(self, t: int) -> int:
        """Return :meth:`_spans` of turf ``t``'s doors now (cached until ``t`` changes)."""
        if t not in self.spanning:
            got = self._parts(t)
            self.spanning[t] = int(got is not None and int(got[1].sum()) > 1)
        return self.spanning[t]

    def _parts(self, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Return turf ``t``'s hull minus the lines: its parts and which hold doors (cached).

        None when no line crosses the hull.
        """
        if t not in self.parts:
            self.parts[t] = self._hull_parts(self._members(t))
        return self.parts[t]

    def _members(self, t: int) -> np.ndarray:
        """Return turf ``t``'s doors in door order (an area's labels are not scanned)."""
        return np.array(sorted(self.member_sets[t]), dtype=np.int64)

    def _hull(self, t: int) -> shapely.Geometry:
        if t not in self.hulls:
            pts = self.d.xy[self._members(t)]
            self.hulls[t] = shapely.convex_hull(shapely.multipoints(pts))
        return self.hulls[t]

    def _spans(self, members: np.ndarray) -> int:
        """Return 1 when the doors' hull minus the barrier lines has two parts holding doors."""
        got = self._hull_parts(members)
        return int(got is not None and int(got[1].sum()) > 1)

    def _hull_parts(self, members: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Return the doors' hull minus the barrier lines: its parts and which hold doors."""
        pts = self.d.xy[members]
        hull = shapely.convex_hull(shapely.multipoints(pts))
        cut = self.barrier.around(hull) if self.barrier is not None else None
        if cut is None or not shapely.intersects(hull, cut):
            return None
        parts = shapely.get_parts(shapely.difference(hull, cut))
        held = np.array([shapely.intersects_xy(p, pts[:, 0], pts[:, 1]).any() for p in parts])
        return parts, held


@dataclass(frozen=True)
class _Lines:
    """Barrier lines, indexed, and the half-width that makes them barriers."""

    lines: np.ndarray
    tree: shapely.STRtree
    buffer_m: float
    clipped: dict[tuple[float, ...], shapely.Geometry | None] = field(default_factory=dict)

    @classmethod
    def of(cls, geom: shapely.Geometry, buffer_m: float) -> _Lines:
        lines = shapely.get_parts(geom)
        lines = lines[~shapely.is_empty(lines)]
        return cls(lines, shapely.STRtree(lines), buffer_m)

    def meets(self, hull: shapely.Geometry) -> bool:
        """Whether a barrier (a line and its buffer) touches ``hull``."""
        return len(self.tree.query(hull, predicate="dwithin", distance=self.buffer_m)) > 0

    def around(self, hull: shapely.Geometry) -> shapely.Geometry | None:
        """Return the barriers over ``hull``: the lines near it, clipped and buffered.

        Only what lies over the hull matters, so the lines are clipped to its box (widened by
        twice the buffer, then out to a grid of :data:`_CLIP_GRID_M`) before buffering: the
        hull's parts come out as with the whole lines, at a fraction of the cost, and the
        hulls of one turf before and after a move mostly share one box, whose clipped and
        buffered lines are kept.
        """
        x0, y0, x1, y1 = shapely.bounds(hull).tolist()
        m = 2 * self.buffer_m
        box = (math.floor((x0 - m) / _CLIP_GRID_M) * _CLIP_GRID_M,
               math.floor((y0 - m) / _CLIP_GRID_M) * _CLIP_GRID_M,
               math.ceil((x1 + m) / _CLIP_GRID_M) * _CLIP_GRID_M,
               math.ceil((y1 + m) / _CLIP_GRID_M) * _CLIP_GRID_M)
        if box not in self.clipped:
            hits = np.sort(self.tree.query(shapely.box(*box)))
            local = (shapely.clip_by_rect(shapely.multilinestrings(self.lines[hits]), *box)
                     if len(hits) else None)
            self.clipped[box] = (None if local is None or shapely.is_empty(local)
                                 else cast(shapely.Geometry, shapely.buffer(local, self.buffer_m)))
        return self.clipped[box]


def _count_pieces(att: Counter[tuple[int, int]]) -> int:
    """Strict pieces from runs counted by junction: loose runs, then groups of junctions."""
    parent: dict[int, int] = {}
    for (a, b), n in att.items():
        if n > 0:
            for j in (a, b):
                if j >= 0:
                    parent[j] = j
    groups = len(parent)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = x = parent[parent[x]]
        return x

    for (a, b), n in att.items():
        if n > 0 and a >= 0 and b >= 0:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[ra] = rb
                groups -= 1
    return att[(-1, -1)] + groups


def _excess(weight: float, target: float, tol: float) -> float:
    """How far a turf's weight lies beyond the tolerance, as a share of the target."""
    return max(abs(weight / target - 1) - tol, 0.0)


def _excess_of(weight: np.ndarray, target: float, tol: float) -> np.ndarray:
    """:func:`_excess` of many weights."""
    return np.maximum(np.abs(weight / target - 1) - tol, 0.0)


def _sse_of(cnt: np.ndarray, sx: np.ndarray, sy: np.ndarray, sq: np.ndarray) -> np.ndarray:
    """:func:`_sse` of many point sets."""
    safe = np.where(cnt > 0, cnt, 1.0)
    return np.where(cnt > 0, sq - (sx * sx + sy * sy) / safe, 0.0)


def _sse(cnt: float, sx: float, sy: float, sq: float) -> float:
    """Sum of squared distances of ``cnt`` points to their centroid, from their sums."""
    return sq - (sx * sx + sy * sy) / cnt if cnt > 0 else 0.0
