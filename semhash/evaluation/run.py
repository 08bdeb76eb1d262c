"""Retrieval quality of semhash's codes beside the classic baselines, as ../shared/PROTOCOL.md fixes it.

One run reads a corpus's database and queries, makes the features once, then for each code
length trains semhash (and, with labels, its supervised variant) and fits LSH, PCAH and
PCA-ITQ on the same database, and scores every method by exact ranking of the queries. The
exact real-valued search is scored once. Each semhash row also measures Annoy against the
exact Hamming scan: recall@100 (ties counted) and the time per query of each.
"""

import functools
import time

import numpy as np

from .. import defaults
from ..codes import binary, neighbours
from ..index.backends import AnnoyBackend, ExactScan
from ..modality import named
from ..models.baselines import LSH, PCAH, PCAITQ
from ..models.selfcheck import AUTOENCODER, coder_name
from ..sources import datasets
from . import metrics

BASELINES = {"lsh": LSH, "pcah": PCAH, "pca-itq": PCAITQ}
DEPTH = 1000  # ranked this deep: mAP@1000, and precision@100 from its first columns
ANNOY_K = 100
# Annoy's recall and both searches' query times are measured on a seeded sample of this many
# queries: at CIFAR-10's default search_k, Annoy takes 10 ms a query, so all 10,000 test images
# took 7 minutes of a four-length evaluation, for a recall that 1,000 pin to about .002.
ANNOY_QUERIES = 1000


class Evaluation:
    """The protocol's table for one corpus: `run()` returns its rows as dicts.

    corpus: "20newsgroups", "thucnews", "cifar10" (read from `data_dir`) or a folder of text
    files in label subfolders (split by `query_share`). supervised: add rows whose encoder
    was also fine-tuned on the database's labels (never the queries'). variants: add a row for
    each of `defaults.VARIANTS` (other code layers), named "semhash-<variant>". queries: score only
    this many queries, sampled with the seed (all by default, as the protocol asks).
    model_params: overrides of semhash's model settings; arch: the image model. coder: how `semhash
    index` codes the items (`defaults.CODERS`): the rows "semhash" (the autoencoder) and
    "semhash-default" (what `semhash index` keeps) are explained at `_semhash`.
    image_features: "patches" or "pixels" (by default what suits `arch`, see
    `index.image_features`), with `feature_params` overriding the patch features' settings.
    With patch features the baselines run twice: on pixels in [0, 1], as the protocol's
    reference numbers were measured, and on semhash's own patch features (rows "-patches").
    """

    def __init__(self, corpus, data_dir=None, bits=(16, 32, 64, 128), supervised=False, baselines=True, variants=False,
                 arch="dense", coder=defaults.CODER,
                 model_params=None, image_features=None, feature_params=None, queries=None, query_share=0.2, trees=defaults.TREES,
                 seed=0, verbose=False):
        self.corpus = corpus
        self.data_dir = data_dir
        self.bits = bits
        self.supervised = supervised
        self.baselines = baselines
        self.variants = variants
        self.arch = arch
        self.coder = coder
        self.model_params = model_params
        self.image_features = image_features
        self.feature_params = feature_params
        self.queries = queries
        self.query_share = query_share
        self.trees = trees
        self.seed = seed
        self.verbose = verbose

    def run(self, on_row=None):
        """Score every method at every code length; `on_row(row)` hears of each as it is done."""
        kind, database, queries = datasets.load(self.corpus, self.data_dir, self.query_share, self.seed)
        if self.queries is not None and self.queries < len(queries.labels):
            chosen = np.sort(np.random.default_rng(self.seed).choice(len(queries.labels), self.queries, replace=False))
            queries = queries.subset(chosen)
        self._labels = database.labels, queries.labels
        self._fitted = []
        name = self.corpus if self.corpus in datasets.BENCHMARKS else str(self.corpus)
        self._name = name
        ours, plain, read_as = named(kind).benchmark_features(
            database.items, queries.items, arch=self.arch, feature_kind=self.image_features, verbose=self.verbose,
            **(self.feature_params or {}))
        rows = []

        def record(row):
            rows.append(row)
            if on_row:
                on_row(row)

        if self.baselines:
            for suffix, (inputs, metric) in plain.items():
                record(self._exact(inputs, metric, suffix))
        for bits in self.bits:
            if self.baselines:
                for suffix, (inputs, _) in plain.items():
                    for method, hash_class in BASELINES.items():
                        record(self._hashed(method + suffix, bits, lambda: hash_class(bits=bits, seed=self.seed),
                                            inputs, fit_labels=False))
            for row in self._semhash(kind, read_as, bits, ours):
                record(row)
            for variant, settings in (defaults.VARIANTS.items() if self.variants else ()):
                record(self._hashed(f"semhash-{variant}", bits, functools.partial(self._model, kind, read_as, bits,
                                                                                   **settings), ours, fit_labels=False))
            if self.supervised:
                record(self._hashed("semhash-supervised", bits, lambda: self._model(kind, read_as, bits), ours, fit_labels=True))
        return rows

    def _model(self, kind, read_as, bits, **settings):
        """An unfitted semhash model with the defaults for what it reads (see `defaults`), the
        evaluation's model settings and then `settings` laid over them."""
        return defaults.model(kind, self.arch, read_as, **{**(self.model_params or {}), **settings, "bits": bits,
                                                            "seed": self.seed, "verbose": self.verbose})

    def _row(self, method, bits, relevant, seconds):
        """A row of scores; a database smaller than 100 (or 1,000) is scored over all of it."""
        return {
            "corpus": self._name,
            "method": method,
            "bits": bits,
            "precision_at_100": round(metrics.precision_at(relevant, min(100, relevant.shape[1])), 4),
            "map_at_1000": round(metrics.mean_average_precision(relevant, min(DEPTH, relevant.shape[1])), 4),
            **seconds,
        }

    def _exact(self, inputs, metric, suffix=""):
        started = time.perf_counter()
        rows, _ = neighbours.real_ranking(*inputs, DEPTH, metric=metric, seed=self.seed)
        seconds = {"rank_seconds": round(time.perf_counter() - started, 2)}
        return self._row(f"exact-{metric}{suffix}", None, metrics.relevance(rows, *self._labels), seconds)

    def _hashed(self, method, bits, make, inputs, fit_labels):
        """Fit a hash on the database (or cut an earlier length's members, see `_fit_or_cut`), encode
        both splits, rank exactly and score."""
        started = time.perf_counter()
        model, earlier = make(), None
        if fit_labels:
            db_bits = model.fit_encode(inputs[0], self._labels[0])
        else:
            model, db_bits, earlier = self._fit_or_cut(model, inputs[0])
        row = self._scored(method, bits, model, db_bits, inputs[1], time.perf_counter() - started)
        return {**row, **({"members_from_bits": earlier.bits} if earlier else {})}

    def _fit_or_cut(self, model, X):
        """(`model` fitted on X without labels, X's codes, the earlier model it was cut from or None).
        Where an earlier length's autoencoder has the members `model` would train (see
        `StackedAutoencoder.shares_members_with`), they are cut to its bits instead of trained again."""
        earlier = next((fitted for fitted in self._fitted if fitted.shares_members_with(model)), None)
        if earlier:
            model = earlier.cut_to(model.bits, X)
            codes = model.encode(X)
        else:
            codes = model.fit_encode(X)
        if hasattr(model, "shares_members_with"):
            self._fitted.append(model)
        return model, codes, earlier

    def _semhash(self, kind, read_as, bits, inputs):
        """The rows of semhash's default model at `bits`, fitted once: "semhash", the autoencoder as
        `semhash index --coder` fits it (where a self-check holds items out, on the rest of the
        database), and, unless that coder is the autoencoder alone, "semhash-default": the coder
        `semhash index` keeps (PCA-ITQ or the same autoencoder), named in `coder`, with the self-check's
        scores in `self_check`. The autoencoder alone may be cut from an earlier length's members (see
        `_fit_or_cut`); the row names that length in `members_from_bits`."""
        if self.coder == AUTOENCODER:
            return [self._hashed("semhash", bits, lambda: self._model(kind, read_as, bits), inputs, fit_labels=False)]
        started = time.perf_counter()
        coder = defaults.coder(kind, self._model(kind, read_as, bits), self.coder).fit(inputs[0])
        seconds = time.perf_counter() - started
        kept, check = getattr(coder, "chosen_", coder), getattr(coder, "check_", None)
        rows = []
        if check:
            autoencoder = coder.candidates_[AUTOENCODER]
            rows.append(self._scored("semhash", bits, autoencoder, autoencoder.encode(inputs[0]), inputs[1], seconds))
        row = self._scored("semhash-default", bits, kept, kept.encode(inputs[0]), inputs[1], seconds)
        return [*rows, {**row, "coder": coder_name(kept), **({"self_check": check} if check else {})}]

    def _scored(self, method, bits, model, db_bits, query_inputs, train_seconds):
        """Encode the queries with a fitted hash, rank the database's codes `db_bits` exactly and score."""
        fitted = time.perf_counter()
        query_bits = model.encode(query_inputs)
        db_codes, query_codes = binary.pack(db_bits), binary.pack(query_bits)
        encoded = time.perf_counter()
        rows, distances = metrics.hamming_ranking(db_codes, query_codes, DEPTH, seed=self.seed)
        ranked = time.perf_counter()
        seconds = {"train_seconds": round(train_seconds, 2), "encode_seconds": round(encoded - fitted, 2),
                   "rank_seconds": round(ranked - encoded, 2)}
        row = self._row(method, bits, metrics.relevance(rows, *self._labels), seconds)
        precision, recall = metrics.pr_curve(db_codes, query_codes, *self._labels, bits)
        row["precision_radius_2"] = round(float(precision[min(2, bits)]), 4)
        row["pr_curve"] = {"precision": np.round(precision, 4).tolist(), "recall": np.round(recall, 4).tolist()}
        if method.startswith("semhash"):
            sample = self._annoy_sample(len(query_codes))
            row["annoy"] = self._annoy(db_bits, db_codes, query_codes[sample], distances[sample, :ANNOY_K])
        return row

    def _annoy_sample(self, n_queries):
        """The queries Annoy is checked on: all, or ANNOY_QUERIES of them drawn with the seed."""
        if n_queries <= ANNOY_QUERIES:
            return np.arange(n_queries)
        return np.sort(np.random.default_rng(self.seed).choice(n_queries, ANNOY_QUERIES, replace=False))

    def _annoy(self, db_bits, db_codes, query_codes, exact_distances):
        """Annoy's recall@100 against the exact ranking, and query times of both searches, each
        the index's backend at its defaults (search_k is the default before it is cut to the
        database).

        build_seconds covers adding the database's codes and building the trees.
        """
        started = time.perf_counter()
        annoy = AnnoyBackend(self.trees, self.seed).build(db_bits)
        built = time.perf_counter()
        found = [annoy.search(packed, ANNOY_K)[1] for packed in query_codes]
        searched = time.perf_counter()
        exact = ExactScan(db_codes)
        for packed in query_codes:
            exact.search(packed, ANNOY_K)
        scanned = time.perf_counter()
        n = len(query_codes)
        return {
            "trees": self.trees,
            "search_k": annoy.default_search_k(ANNOY_K),
            "recall_at_100": round(metrics.recall_at_k(exact_distances, found), 4),
            "build_seconds": round(built - started, 2),
            "annoy_query_ms": round(1000 * (searched - built) / n, 3),
            "exact_query_ms": round(1000 * (scanned - searched) / n, 3),
        }


def _methods(rows):
    return list(dict.fromkeys(row["method"] for row in rows))


def markdown(rows):
    """The rows as Markdown: per corpus, a table of precision@100 and mAP@1000 by method and
    code length, then Annoy's recall and query times for semhash's rows."""
    lines = []
    for corpus in dict.fromkeys(row["corpus"] for row in rows):
        mine = [row for row in rows if row["corpus"] == corpus]
        bits = sorted({row["bits"] for row in mine if row["bits"]})
        lines += [f"### {corpus}", "", "| method | " + " | ".join(f"{b} bits: P@100 / mAP@1000" for b in bits) + " |",
                  "|---|" + "---|" * len(bits)]
        for method in _methods(mine):
            cells = {row["bits"]: f"{row['precision_at_100']:.3f} / {row['map_at_1000']:.3f}"
                     for row in mine if row["method"] == method}
            if None in cells:  # exact real-valued search: one score, whatever the code length
                cells = dict.fromkeys(bits, cells[None])
            lines.append(f"| {method} | " + " | ".join(cells.get(b, "") for b in bits) + " |")
        radius = [row for row in mine if "precision_radius_2" in row]
        if radius:
            lines += ["", "Precision within Hamming radius 2 (a query with nothing that near scores 0):", "",
                      "| method | " + " | ".join(f"{b} bits" for b in bits) + " |", "|---|" + "---|" * len(bits)]
            for method in _methods(radius):
                cells = {row["bits"]: f"{row['precision_radius_2']:.3f}" for row in radius if row["method"] == method}
                lines.append(f"| {method} | " + " | ".join(cells.get(b, "") for b in bits) + " |")
        annoy = [row for row in mine if "annoy" in row]
        if annoy:
            lines += ["", "| semhash row | bits | Annoy recall@100 | Annoy ms/query | exact scan ms/query | train s |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {row['method']} | {row['bits']} | {row['annoy']['recall_at_100']:.3f} | "
                      f"{row['annoy']['annoy_query_ms']:.2f} | {row['annoy']['exact_query_ms']:.2f} | "
                      f"{row['train_seconds']:.0f}{_cut_from(row)} |" for row in annoy]
        lines.append("")
    return "\n".join(lines)


def _cut_from(row):
    """Where a row's model was cut from an earlier length's members, the words that say so."""
    return f" (the {row['members_from_bits']}-bit row's members, cut)" if "members_from_bits" in row else ""


def plot(rows, path):
    """A PNG: precision@100 against code length per method, and each method's
    precision-recall curve over Hamming radius at the longest code length."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4.5))
    hashed = [row for row in rows if row["bits"]]
    longest = max(row["bits"] for row in hashed)
    for method in _methods(hashed):
        mine = sorted((row for row in hashed if row["method"] == method), key=lambda row: row["bits"])
        left.plot([row["bits"] for row in mine], [row["precision_at_100"] for row in mine], marker="o", label=method)
        curve = next((row["pr_curve"] for row in mine if row["bits"] == longest), None)
        if curve:
            right.plot(curve["recall"], curve["precision"], label=method)
    exact = [row for row in rows if not row["bits"]]
    for row, style in zip(exact, ["--", ":", "-."] * len(exact)):
        left.axhline(row["precision_at_100"], color="grey", linestyle=style, label=row["method"])
    left.set(xscale="log", xlabel="bits", ylabel="precision@100", title=", ".join(dict.fromkeys(r["corpus"] for r in rows)))
    bits = sorted({row["bits"] for row in hashed})
    left.set_xticks(bits, [str(b) for b in bits])
    left.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())  # no "3 x 10^1" beside "32"
    right.set(xlabel="recall", ylabel="precision", title=f"precision-recall over Hamming radius, {longest} bits")
    # One legend under both panels, where it hides no line (both panels share the method colours).
    handles, labels = left.get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
