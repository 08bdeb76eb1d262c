"""The 2-D map of an index: a sample of its codes projected to two dimensions, coloured by label,
as points for a page or drawn into a PNG.

Two projections (`defaults.MAP_PROJECTIONS`), because they trade clarity for time
(`benchmarks/map_projection.py`, docs/RESULTS.md): t-SNE of a sample (Hamming distance between codes) separates the labels more
clearly (on 20 Newsgroups a point's 10 nearest on the map share its label .66 of the time, against
.31) but took 25 s for 2,000 codes; PCA of the bits (each as -1 or +1) takes milliseconds for
thousands and needs nothing but the codes. `semhash map`, where waiting is fine, draws t-SNE; the
server's page, which makes its map on the first request for it, draws PCA unless asked for t-SNE.
Learned codes repeat, so every point is moved by a small seeded jitter: items sharing a code show
as a cloud whose size tells how many they are, not as one dot.
"""

import io

import numpy as np

from .codes import binary
from .contact_sheet import write_png
from .defaults import MAP_POINTS, MAP_PROJECTIONS, SEED, TSNE_POINTS
from .errors import SemhashError

JITTER = 0.01  # of the map's extent, the deviation of each point's jitter
TSNE_MIN_POINTS = 5  # fewer items than this are placed by PCA: t-SNE needs more than its perplexity
OTHER = "#9aa0a6"  # the colour of items without a label
# Matplotlib's tab20, in pairs of a dark and a light hue, reordered so that neighbours differ most.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
           "#dbdb8d", "#9edae5"]


class CodeMap:
    """Points of an index's items in two dimensions, from a seeded sample of their bits.

    max_points: the largest sample; an index of more items is sampled, so the work is bounded (by
    TSNE_POINTS for t-SNE). projection: "pca" or "tsne" (see the module's docstring).
    Fitted attributes: `rows_` (the sampled rows, in row order), `points_` (their x, y), `ids_`,
    `labels_`, `colours_` ({label: colour}), `projection_` (the one used: PCA for too few items
    for t-SNE), `explained_` (PCA: the share of the bits' variance each axis holds; t-SNE: None).
    """

    def __init__(self, max_points=MAP_POINTS, seed=SEED, projection="pca"):
        self.max_points = max_points
        self.seed = seed
        self.projection = projection

    def fit(self, index):
        """Sample `index`'s rows, project their codes, read their ids and labels; returns self."""
        if self.projection not in MAP_PROJECTIONS:
            raise SemhashError(f"a map is drawn by {' or '.join(MAP_PROJECTIONS)}, not {self.projection!r}")
        rng = np.random.default_rng(self.seed)
        live = index.live_rows()  # removed items are not drawn
        most = min(self.max_points, TSNE_POINTS) if self.projection == "tsne" else self.max_points
        rows = live if len(live) <= most else np.sort(rng.choice(live, most, replace=False))
        bits = binary.unpack(index.codes(rows), index.bits)
        self.projection_ = "tsne" if self.projection == "tsne" and len(rows) >= TSNE_MIN_POINTS else "pca"
        points = self._tsne(bits) if self.projection_ == "tsne" else self._pca(bits)
        extent = float(np.ptp(points, axis=0).max()) if len(points) else 0.0
        self.points_ = points + rng.normal(scale=JITTER * (extent or 1.0), size=points.shape)
        records = [index.records[row] for row in rows]
        self.rows_, self.ids_ = rows, [record["id"] for record in records]
        self.labels_ = [record.get("label") for record in records]
        named = sorted({label for label in self.labels_ if label is not None})
        self.colours_ = {label: PALETTE[number % len(PALETTE)] for number, label in enumerate(named)}
        return self

    def _pca(self, bits):
        """The bits' first two principal components, each axis's sign fixed; sets `explained_`."""
        signs = bits.astype(np.float32) * 2 - 1
        centred = signs - signs.mean(axis=0)
        _, values, axes = np.linalg.svd(centred, full_matrices=False)
        axes = axes[:2] * np.where(axes[:2].sum(axis=1, keepdims=True) < 0, -1, 1)  # one sign for one index
        points = centred @ axes.T
        if points.shape[1] < 2:  # a 1-bit index has one axis
            points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
        variance = np.square(values)
        self.explained_ = [float(v) for v in (variance[:2] / variance.sum() if variance.sum() else np.zeros(2))]
        return points

    def _tsne(self, bits):
        """t-SNE of the bits by Hamming distance, seeded; `explained_` is None."""
        from sklearn.manifold import TSNE

        self.explained_ = None
        tsne = TSNE(2, metric="hamming", init="random", perplexity=min(30.0, (len(bits) - 1) / 3),
                    random_state=self.seed)
        return tsne.fit_transform(bits.astype(np.float32))

    def colour(self, label):
        return self.colours_.get(label, OTHER)

    def to_json(self, index_size):
        """The map as a page draws it: each point's id, label, x and y, and the colours."""
        return {
            "items": index_size,
            "shown": len(self.ids_),
            "method": self.projection_,
            "explained": None if self.explained_ is None else [round(share, 4) for share in self.explained_],
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
        if self.explained_ is None:
            axes.set_xlabel("t-SNE of the bits (Hamming distance)")
        else:
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
