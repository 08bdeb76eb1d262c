"""The 2-D map of an index: a sample of its codes projected onto their first two principal
components, coloured by label, as points for a page or drawn into a PNG.

PCA of the bits (each taken as -1 or +1), not t-SNE or UMAP: it is fixed by the codes alone (no
perplexity, no iterations, nothing downloaded), takes milliseconds for thousands of codes, and
places a new item by a product, so a map answers at once when a server first asks for it.
t-SNE of a sample does separate the labels more clearly (`benchmarks/map_projection.py`: on 20
Newsgroups, a point's 10 nearest on the map share its label .66 of the time against .31), but took
25 s for 2,000 codes against 0.14 s, too long for a map a server makes on its first request; an
option to draw it by t-SNE, made in the background, is what comes next (docs/RESULTS.md).
Learned codes repeat, so every point is moved by a small seeded jitter: items sharing a code
show as a cloud whose size tells how many they are, not as one dot.
"""

import io

import numpy as np

from .codes import binary
from .contact_sheet import write_png
from .defaults import MAP_POINTS, SEED

JITTER = 0.01  # of the map's extent, the deviation of each point's jitter
OTHER = "#9aa0a6"  # the colour of items without a label
# Matplotlib's tab20, in pairs of a dark and a light hue, reordered so that neighbours differ most.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
           "#dbdb8d", "#9edae5"]


class CodeMap:
    """Points of an index's items in two dimensions: PCA of a seeded sample of their bits.

    max_points: the largest sample; an index of more items is sampled, so the work is bounded.
    Fitted attributes: `rows_` (the sampled rows, in row order), `points_` (their x, y), `ids_`,
    `labels_`, `colours_` ({label: colour}), `explained_` (the share of the bits' variance each
    of the two axes holds).
    """

    def __init__(self, max_points=MAP_POINTS, seed=SEED):
        self.max_points = max_points
        self.seed = seed

    def fit(self, index):
        """Sample `index`'s rows, project their codes, read their ids and labels; returns self."""
        rng = np.random.default_rng(self.seed)
        live = index.live_rows()  # removed items are not drawn
        rows = live if len(live) <= self.max_points else np.sort(rng.choice(live, self.max_points, replace=False))
        signs = binary.unpack(index.codes(rows), index.bits).astype(np.float32) * 2 - 1
        centred = signs - signs.mean(axis=0)
        _, values, axes = np.linalg.svd(centred, full_matrices=False)
        axes = axes[:2] * np.where(axes[:2].sum(axis=1, keepdims=True) < 0, -1, 1)  # one sign for one index
        points = centred @ axes.T
        if points.shape[1] < 2:  # a 1-bit index has one axis
            points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
        extent = float(np.ptp(points, axis=0).max()) if len(points) else 0.0
        self.points_ = points + rng.normal(scale=JITTER * (extent or 1.0), size=points.shape)
        variance = np.square(values)
        self.explained_ = [float(v) for v in (variance[:2] / variance.sum() if variance.sum() else np.zeros(2))]
        records = [index.records[row] for row in rows]
        self.rows_, self.ids_ = rows, [record["id"] for record in records]
        self.labels_ = [record.get("label") for record in records]
        named = sorted({label for label in self.labels_ if label is not None})
        self.colours_ = {label: PALETTE[number % len(PALETTE)] for number, label in enumerate(named)}
        return self

    def colour(self, label):
        return self.colours_.get(label, OTHER)

    def to_json(self, index_size):
        """The map as a page draws it: each point's id, label, x and y, and the colours."""
        return {
            "items": index_size,
            "shown": len(self.ids_),
            "method": "pca",
            "explained": [round(share, 4) for share in self.explained_],
            "colours": self.colours_,
            "points": [{"id": id_, "label": label, "x": round(float(x), 4), "y": round(float(y), 4)}
                       for id_, label, (x, y) in zip(self.ids_, self.labels_, self.points_)],
        }

    def image(self, title=""):
        """The map drawn by matplotlib as a PIL image, with a legend of up to len(PALETTE) labels."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
        from PIL import Image

        figure = Figure(figsize=(9, 7), dpi=100, layout="constrained")
        axes = figure.add_subplot()
        size = min(30.0, max(4.0, 20_000 / max(len(self.points_), 1)))  # dots shrink as they crowd
        for label in [*self.colours_, None]:
            chosen = [number for number, own in enumerate(self.labels_) if own == label]
            if chosen:
                axes.scatter(self.points_[chosen, 0], self.points_[chosen, 1], s=size, alpha=0.6, linewidths=0,
                             color=self.colour(label), label=label if label is not None else "(no label)")
        axes.set_xlabel(f"first principal component of the bits ({self.explained_[0]:.0%} of their variance)")
        axes.set_ylabel(f"second ({self.explained_[1]:.0%})")
        axes.set_title(title, fontsize=10)
        if 0 < len(self.colours_) <= len(PALETTE):
            axes.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8, markerscale=2, frameon=False)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        buffer.seek(0)
        with Image.open(buffer) as drawn:
            return drawn.convert("RGB")

    def write(self, path, title=""):
        """Write the map's PNG to `path` atomically (see `contact_sheet.write_png`)."""
        write_png(self.image(title), path)

    def png(self, title=""):
        """The map's PNG as bytes."""
        buffer = io.BytesIO()
        self.image(title).save(buffer, format="PNG")
        return buffer.getvalue()
