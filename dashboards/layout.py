"""Layered left-to-right layout of the architecture graph (pure, deterministic).

Sugiyama in four small steps: break cycles (a depth-first search in id order reverses back
edges), longest-path layering, dummy nodes on edges that skip layers, then barycentric sweeps to
reduce crossings. Coordinates put each layer in a column; nodes of a column never overlap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

NODE_H = 44
DUMMY_H = 14
GAP_Y = 26
GAP_X = 120
MARGIN = 24
CHAR_W = 7.4
SWEEPS = 8


@dataclass
class NodeBox:
    id: str
    kind: str
    label: str
    layer: int
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = NODE_H
    dummy: bool = False

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass
class EdgePath:
    source: str
    target: str
    d: str
    label_x: float
    label_y: float
    back: bool = False
    points: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Layout:
    nodes: list[NodeBox]
    edges: list[EdgePath]
    width: float
    height: float


def node_width(label: str) -> float:
    return max(110.0, round(len(label) * CHAR_W + 36))


def _back_edges(ids: list[str], edges: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Edges that close a cycle in a depth-first search taken in id order."""
    succ: dict[str, list[str]] = defaultdict(list)
    for source, target in sorted(edges):
        succ[source].append(target)
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    for root in ids:
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succ[child])))
    return back


def _layers(ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest path from the sources: each node one layer right of its furthest predecessor."""
    preds: dict[str, list[str]] = defaultdict(list)
    succ: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        preds[target].append(source)
        succ[source].append(target)
    waiting = {node: len(preds[node]) for node in ids}
    ready = [node for node in ids if waiting[node] == 0]
    layer = {node: 0 for node in ids}
    while ready:
        node = ready.pop(0)
        for child in succ[node]:
            layer[child] = max(layer[child], layer[node] + 1)
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return layer


def _split_long_edges(
    layer: dict[str, int], edges: list[tuple[str, str]]
) -> tuple[list[tuple[str, str]], dict[tuple[str, str], list[str]]]:
    """Unit-length edges through dummy nodes; returns them and each edge's chain of nodes."""
    short: list[tuple[str, str]] = []
    chains: dict[tuple[str, str], list[str]] = {}
    for source, target in edges:
        chain = [source]
        for step in range(layer[source] + 1, layer[target]):
            dummy = f"~{source}~{target}~{step}"
            layer[dummy] = step
            chain.append(dummy)
        chain.append(target)
        short.extend(zip(chain, chain[1:], strict=False))
        chains[(source, target)] = chain
    return short, chains


def _barycentre(node: str, neighbours: dict[str, list[str]], pos: dict[str, int]) -> float | None:
    near = [pos[other] for other in neighbours[node] if other in pos]
    return sum(near) / len(near) if near else None


def _sweep(rows: list[list[str]], neighbours: dict[str, list[str]]) -> None:
    """Reorder each row (after the first) by the mean position of its neighbours in the previous."""
    for index in range(1, len(rows)):
        pos = {node: i for i, node in enumerate(rows[index - 1])}
        current = {node: i for i, node in enumerate(rows[index])}

        def key(node: str, pos=pos, current=current) -> tuple[float, int]:
            value = _barycentre(node, neighbours, pos)
            return (current[node] if value is None else value, current[node])

        rows[index].sort(key=key)


def _crossings(rows: list[list[str]], edges: list[tuple[str, str]]) -> int:
    pos = {node: i for row in rows for i, node in enumerate(row)}
    by_layer: dict[int, list[tuple[int, int]]] = defaultdict(list)
    layer_of = {node: k for k, row in enumerate(rows) for node in row}
    for source, target in edges:
        by_layer[layer_of[source]].append((pos[source], pos[target]))
    total = 0
    for pairs in by_layer.values():
        for i, (a1, b1) in enumerate(pairs):
            total += sum(1 for a2, b2 in pairs[i + 1 :] if (a1 - a2) * (b1 - b2) < 0)
    return total


def order_layers(layer: dict[str, int], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Rows of node ids per layer, ordered by barycentric sweeps; the best order found wins."""
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for node in sorted(layer, key=lambda n: (n.startswith("~"), n)):
        rows[layer[node]].append(node)
    preds: dict[str, list[str]] = defaultdict(list)
    succ: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        preds[target].append(source)
        succ[source].append(target)
    best, best_count = [row[:] for row in rows], _crossings(rows, edges)
    for _ in range(SWEEPS):
        _sweep(rows, preds)
        rows.reverse()
        _sweep(rows, succ)
        rows.reverse()
        count = _crossings(rows, edges)
        if count < best_count:
            best, best_count = [row[:] for row in rows], count
    return best


def _place(rows: list[list[str]], boxes: dict[str, NodeBox]) -> tuple[float, float]:
    """Columns left to right, rows top to bottom, each column centred on the tallest."""
    heights = [sum(boxes[n].h for n in row) + GAP_Y * max(0, len(row) - 1) for row in rows]
    tallest = max(heights, default=0)
    x = MARGIN
    for row, height in zip(rows, heights, strict=True):
        column_w = max((boxes[n].w for n in row), default=0)
        y = MARGIN + (tallest - height) / 2
        for node in row:
            box = boxes[node]
            box.x = x + (column_w - box.w) / 2
            box.y = y
            y += box.h + GAP_Y
        x += column_w + GAP_X
    return x - GAP_X + MARGIN, tallest + 2 * MARGIN


def _curve(points: list[tuple[float, float]]) -> str:
    """A smooth path through points with horizontal tangents (cubic Bézier per segment)."""
    (x0, y0), parts = points[0], []
    parts.append(f"M{x0:.1f},{y0:.1f}")
    for (xa, ya), (xb, yb) in zip(points, points[1:], strict=False):
        mid = (xb - xa) / 2
        parts.append(f"C{xa + mid:.1f},{ya:.1f} {xb - mid:.1f},{yb:.1f} {xb:.1f},{yb:.1f}")
    return " ".join(parts)


def _forward_path(chain: list[str], boxes: dict[str, NodeBox]) -> EdgePath:
    first, last = boxes[chain[0]], boxes[chain[-1]]
    points = [(first.x + first.w, first.cy)]
    points += [(boxes[n].cx, boxes[n].cy) for n in chain[1:-1]]
    points.append((last.x - 2, last.cy))
    # The label sits on the middle of the path: a dummy point, or the middle of one segment.
    if len(points) > 2:
        lx, ly = points[len(points) // 2]
    else:
        lx, ly = (points[0][0] + points[1][0]) / 2, (points[0][1] + points[1][1]) / 2
    return EdgePath(chain[0], chain[-1], _curve(points), lx, ly, points=points)


def _back_path(source: NodeBox, target: NodeBox) -> EdgePath:
    """An edge against the flow: leaves under the source and loops back under the target."""
    x0, y0 = source.cx, source.y + source.h
    x1, y1 = target.cx, target.y + target.h + 4
    dip = max(y0, y1) + 40
    d = f"M{x0:.1f},{y0:.1f} C{x0:.1f},{dip:.1f} {x1:.1f},{dip:.1f} {x1:.1f},{y1:.1f}"
    return EdgePath(source.id, target.id, d, (x0 + x1) / 2, dip - 10, back=True)


def layered_layout(nodes: Sequence[dict], edges: Sequence[dict]) -> Layout:
    """Positions for `nodes` (`id`, `kind`, `label`) and paths for `edges` (`source`, `target`)."""
    ids = sorted(node["id"] for node in nodes)
    pairs = sorted({(e["source"], e["target"]) for e in edges if e["source"] != e["target"]})
    pairs = [pair for pair in pairs if pair[0] in set(ids) and pair[1] in set(ids)]
    back = _back_edges(ids, pairs)
    forward = [pair for pair in pairs if pair not in back]
    layer = _layers(ids, forward)
    short, chains = _split_long_edges(layer, forward)
    rows = order_layers(layer, short)
    boxes = {
        node["id"]: NodeBox(
            node["id"], node["kind"], node["label"], layer[node["id"]], w=node_width(node["label"])
        )
        for node in nodes
    }
    for name in layer:
        if name not in boxes:
            boxes[name] = NodeBox(name, "dummy", "", layer[name], w=8, h=DUMMY_H, dummy=True)
    width, height = _place(rows, boxes)
    paths = [_forward_path(chains[pair], boxes) for pair in forward]
    paths += [_back_path(boxes[s], boxes[t]) for s, t in sorted(back)]
    real = [boxes[node_id] for node_id in ids]
    return Layout(nodes=real, edges=paths, width=width, height=height + (40 if back else 0))
