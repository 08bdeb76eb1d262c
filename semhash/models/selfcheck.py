"""SelfChecked: fit the autoencoder and PCA-ITQ on the same rows and keep the one whose codes better
keep the items' exact neighbours, a label-free check of the codes.

There are no labels at index time, but the features say which items are near: a seeded sample of
the items ("check items") each have exact nearest neighbours among the items by feature distance
(cosine for text's TF-IDF rows, Euclidean for image features). A coder scores the share of each
check item's NEIGHBOURS exact neighbours found among its DEPTH nearest by Hamming distance (ties
broken by a seeded permutation, as the evaluation protocol ranks; a tenth of a database under
10 x DEPTH items), averaged over the check items.
The autoencoder and PCA-ITQ (seconds to fit) are both fitted and scored; the higher score is kept,
the autoencoder on a tie. With `holdout` the check items are left out of fitting and coded as new
items would be, against the fitted items' codes; without, they are fitted with the rest. PCA-ITQ,
when kept, is fitted again on every row, check items too (seconds, where the autoencoder would take
as long again): the code kept is the one `--coder pca-itq` would have made.
"""

import time

import numpy as np

from ..codes import binary
from ..codes.neighbours import hamming_ranking, real_ranking, without_self
from ..errors import SemhashError
from .baselines import PCAITQ

NEIGHBOURS = 10  # exact neighbours of each check item
DEPTH = 100  # sought among its first this many by Hamming distance
AUTOENCODER, PCA_ITQ = "autoencoder", "pca-itq"
MIN_CHECK_ITEMS = 10  # fewer check items than this say too little: the autoencoder is kept unchecked


def coder_name(model):
    """What a fitted coder is called in a manifest's `coder` and the evaluation's rows."""
    return PCA_ITQ if isinstance(model, PCAITQ) else AUTOENCODER


def split_rows(n_rows, sample, holdout, seed):
    """(check rows, fitted rows), sorted: a seeded sample of at most `sample` check items (with
    `holdout`, at most a tenth of the rows, which are then left out of fitting), and the rows the
    coders are fitted on, among which the check items' neighbours are sought."""
    rng = np.random.default_rng(seed)
    size = min(sample, n_rows // 10 if holdout else n_rows)
    check = np.sort(rng.choice(n_rows, size, replace=False))
    fitted = np.setdiff1d(np.arange(n_rows), check) if holdout else np.arange(n_rows)
    return check, fitted


def exact_neighbours(X, check, database, metric, seed=0):
    """(len(check), NEIGHBOURS) rows of `database` nearest each check item of X by `metric`, itself
    left out where it is in `database`."""
    own = np.searchsorted(database, check)
    own = np.where((own < len(database)) & (database[np.minimum(own, len(database) - 1)] == check), own, -1)
    rows, _ = real_ranking(X[database], X[check], NEIGHBOURS + 1, metric=metric, seed=seed)
    return without_self(rows, own)[:, :NEIGHBOURS], own


def depth(n_database):
    """How deep the Hamming ranking is searched: DEPTH, or a tenth of a smaller database (NEIGHBOURS
    at least), where the first DEPTH would hold so much of it that any coder finds the neighbours."""
    return max(NEIGHBOURS, min(DEPTH, n_database // 10))


def neighbours_kept(coder, X, check, database, exact, own, seed=0):
    """The share of each check item's `exact` neighbours among its `depth` nearest database items
    by Hamming distance under the fitted `coder` (its own row left out): a float per check item."""
    db_codes = binary.pack(coder.encode(X[database]))
    deep = depth(len(database))
    found, _ = hamming_ranking(db_codes, binary.pack(coder.encode(X[check])), deep + 1, seed=seed)
    found = without_self(found, own)[:, :deep]
    return (found[:, :, None] == exact[:, None, :]).any(axis=1).mean(axis=1)


class SelfChecked:
    """The autoencoder `model` or PCA-ITQ on the same rows, whichever the self-check scores higher.

    metric: the exact neighbours' distance, "cosine" (text) or "euclidean" (images). sample: check
    items, at most. holdout: leave the check items out of fitting. max_database: the neighbours are
    sought among a seeded sample of at most this many fitted rows, so that the check's cost is
    bounded at any corpus size. Its seed is the model's.

    Fitted attributes: `chosen_` (the fitted coder kept; PCA-ITQ fitted again on every row),
    `candidates_` ({name: coder as fitted for the check}), `check_` (what the manifest records: the
    measure, each candidate's score, the choice, the rows the kept coder was fitted on, and why a
    candidate was left out), `history_` (the autoencoder's losses).
    """

    def __init__(self, model, metric="cosine", sample=1000, holdout=True, max_database=20_000):
        self.model = model
        self.metric = metric
        self.sample = sample
        self.holdout = holdout
        self.max_database = max_database

    @property
    def bits(self):
        return self.model.bits

    @property
    def seed(self):
        return self.model.seed

    def fit(self, X, y=None):
        """Fit both candidates on X (less the check items, with `holdout`), score them, keep one."""
        started = time.perf_counter()
        n_rows = X.shape[0]
        check, fitted = split_rows(n_rows, self.sample, self.holdout, self.seed)
        if len(check) < MIN_CHECK_ITEMS:
            check, fitted = check[:0], np.arange(n_rows)
        database = fitted
        rows = X[fitted] if len(fitted) < n_rows else X
        self.candidates_ = {AUTOENCODER: self.model.fit(rows)}
        self.history_ = getattr(self.model, "history_", {})
        trained = time.perf_counter()
        left_out = {}
        if len(check) == 0:
            left_out[PCA_ITQ] = f"{n_rows} items give fewer than {MIN_CHECK_ITEMS} check items: nothing was compared"
        else:
            try:
                self.candidates_[PCA_ITQ] = PCAITQ(bits=self.bits, seed=self.seed).fit(rows)
            except SemhashError as error:  # too few rows or too low a rank for the bits
                left_out[PCA_ITQ] = str(error)
        scores = {}
        if len(check):
            if len(database) > self.max_database:
                database = np.sort(np.random.default_rng(self.seed).choice(database, self.max_database, replace=False))
            exact, own = exact_neighbours(X, check, database, self.metric, self.seed)
            scores = {name: round(float(neighbours_kept(coder, X, check, database, exact, own, self.seed).mean()), 4)
                      for name, coder in self.candidates_.items()}
        chosen = max(scores, key=lambda name: (scores[name], name == AUTOENCODER)) if scores else AUTOENCODER
        self.chosen_ = self.candidates_[chosen]
        kept_items = len(fitted)
        if chosen == PCA_ITQ and kept_items < n_rows:
            self.chosen_, kept_items = PCAITQ(bits=self.bits, seed=self.seed).fit(X), n_rows
        self.check_ = {
            "measure": f"mean share of each check item's {NEIGHBOURS} nearest items ({self.metric} on the features) "
                       f"among its {depth(len(database))} nearest by Hamming distance",
            "metric": self.metric, "check_items": len(check), "held_out": bool(self.holdout and len(check)),
            "database_items": len(database) if len(check) else 0, "fitted_items": len(fitted),
            "scores": scores, "chosen": chosen, "kept_fitted_items": kept_items,
            **({"left_out": left_out} if left_out else {}),
            "seconds": {"autoencoder": round(trained - started, 1),
                        "pca_itq_and_check": round(time.perf_counter() - trained, 1)},
        }
        return self

    def fit_encode(self, X, y=None):
        """`fit`, then every row's code by the coder kept (check items too)."""
        return self.fit(X).encode(X)

    def encode(self, X):
        return self.chosen_.encode(X)

    def projections(self, X):
        return self.chosen_.projections(X)

    def save(self, folder):
        """Save the coder kept: an index holds it alone (see `check_` for how it was chosen)."""
        return self.chosen_.save(folder)
