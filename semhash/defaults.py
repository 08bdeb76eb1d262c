"""Every default semhash builds with, declared once, and the one function that resolves it.

A model's settings are its class's own constructor defaults (scikit-learn style: the constructor is
the parameter list), with the row of `MODELS` for what it reads laid over them. The Python API
(`Index.build`, `model`), the command line (its options' defaults and help are made from this
table) and the evaluation all resolve models here, so they build the same model from the same call.
"""

import inspect

from .errors import SemhashError
from .models.autoencoder import ARCHITECTURES
from .models.baselines import PCAITQ
from .models.selfcheck import AUTOENCODER, PCA_ITQ, SelfChecked

TREES = 32  # Annoy trees
SEED = 0
BITS = 64
SIZE = 32  # the side, in pixels, image files are resized to (CIFAR-10's)
MAP_POINTS = 5000  # the 2-D map of an index draws a seeded sample of at most this many items (see `codemap`)
TSNE_POINTS = 2000  # and at most this many when drawn by t-SNE: 25 s on 2 shared cores (docs/RESULTS.md)
MAP_PROJECTIONS = ("pca", "tsne")  # how a map is drawn (see `codemap`)
# Rows of a line corpus the features and the model are fitted on (see `index.encoding`): training
# grows with the rows and the neighbour search with their square; at 20,000 short documents
# training takes a few minutes on 2 cores (docs/RESULTS.md), and 20 Newsgroups' 11,314 training posts fit whole.
TRAIN_SAMPLE = 20_000
# Rows a partition of a line corpus holds: the unit a process reads, encodes and hands back.
PARTITION_ROWS = 10_000

# Image rows chosen by measuring mAP@1000 on CIFAR-10 at 64 bits (see docs/RESULTS.md). Rebuilt under
# mean squared error; noise before the code sigmoid helped (.224 against .213 without it, dense on
# pixels); ITQ binarizing helped the dense model (.232 against .224) and not the conv one (.220
# against .230); the conv model gets fewer, dearer epochs (its constructor declares them). Rebuilding each image mixed with its 10
# nearest hurt on pixels (.221 against .232) and helped on patch features (.312 against .298), where
# near images share a class far more often, so only the dense model on patch features rebuilds neighbours.
# The text defaults' floors of 780 fine-tuning and 390 pretraining updates were measured on text alone; image
# folders keep 400 and none (CIFAR-10 makes 1,955 and 1,173 in its 5 and 3 epochs either way).
_DENSE_IMAGES = {"hidden": (1024,), "output_loss": "mse", "code_noise": 4.0, "pretrain_epochs": 3, "epochs": 5,
                 "min_steps": 400, "min_pretrain_steps": 0, "neighbour_metric": "euclidean",
                 "members": 1}
MODELS = {
    # (what is indexed, the model, the features it reads): settings over the model class's own
    ("text", "dense", "text"): {},
    # neighbour weight .7 beat .5 on the grid features (.353 against .347 mAP@1000, all test images)
    ("images", "dense", "patches"): {**_DENSE_IMAGES, "neighbours": 10, "neighbour_weight": 0.7},
    # Pixels keep the decoder, so an image can be shown beside its rebuilding (patch features cannot be drawn).
    ("images", "dense", "pixels"): {**_DENSE_IMAGES, "neighbours": 0, "keep_decoder": True},
    ("images", "conv", "pixels"): {},  # ConvStackedAutoencoder's own defaults (it keeps the decoder)
}
# Code-layer variants that `semhash evaluate --variants` scores beside the defaults, each a model setting
# over them; neither measured above the defaults on 20 Newsgroups at 64 bits (see docs/RESULTS.md).
VARIANTS = {"variational": {"code_layer": "variational"}, "l1": {"sparsity": 0.001}}
# The features each model reads unless told otherwise.
FEATURES = {("text", "dense"): "text", ("images", "dense"): "patches", ("images", "conv"): "pixels"}

# What codes an index: the autoencoder or PCA-ITQ, unchecked, or "self-check": fit both and keep the
# one whose codes better keep a held-out sample's exact feature neighbours (see `models.selfcheck`).
# The autoencoder is the default: the check chose PCA-ITQ on 20 Newsgroups, THUCNews and very
# unbalanced corpora made from each, where the autoencoder's precision@100 was .08 to .22 higher
# (docs/RESULTS.md, "Self-check: autoencoder or PCA-ITQ").
SELF_CHECK = "self-check"
CODERS = (AUTOENCODER, SELF_CHECK, PCA_ITQ)
CODER = AUTOENCODER
# The exact neighbours the self-check seeks for each kind of item: cosine on TF-IDF rows, Euclidean on image features.
CHECK_METRICS = {"text": "cosine", "images": "euclidean"}


def coder(kind, model, name=CODER):
    """What fits the codes of items of `kind` as `name` (one of CODERS) asks, given the unfitted
    autoencoder `model`: it wrapped in a self-check, itself, or PCA-ITQ of its bits and seed."""
    if name not in CODERS:
        raise SemhashError(f"unknown coder {name!r}; choose from {', '.join(CODERS)}")
    if name == PCA_ITQ:
        return PCAITQ(bits=model.bits, seed=model.seed)
    return SelfChecked(model, metric=CHECK_METRICS[kind]) if name == SELF_CHECK else model


def _constructor_defaults(model_class):
    parameters = inspect.signature(model_class.__init__).parameters
    return {name: p.default for name, p in parameters.items() if name not in ("self", "verbose")}


def features_for(kind, arch="dense", features=None):
    """The features a model `arch` reads for items of `kind`: `features` if it may, else the default."""
    if (kind, arch) not in FEATURES:
        raise SemhashError(f"no {arch} model for {kind}; choose from "
                           f"{', '.join(sorted({a for k, a in FEATURES if k == kind}))}")
    features = features or FEATURES[kind, arch]
    if (kind, arch, features) not in MODELS:
        readable = sorted(f for k, a, f in MODELS if (k, a) == (kind, arch))
        raise SemhashError(f"the {arch} model reads {' or '.join(readable)}, not {features}; "
                           "choose other features or another model")
    return features


def model_params(kind, arch="dense", features=None):
    """The settings of the model for items of `kind` read as `features` by `arch`: its class's
    defaults with the table's row laid over them."""
    features = features_for(kind, arch, features)
    return {**_constructor_defaults(ARCHITECTURES[arch]), **MODELS[kind, arch, features]}


def model(kind, arch="dense", features=None, **settings):
    """An unfitted model for items of `kind`, with the defaults for what it reads and `settings` over them."""
    features = features_for(kind, arch, features)
    return ARCHITECTURES[arch](**{**MODELS[kind, arch, features], **settings})


def described(name):
    """The default of the model setting `name` in words, for every row of the table that has it:
    e.g. "10 for text and images (patches); 0 for images (pixels) and images (conv)", or the one
    value where every row has it."""
    by_value = {}
    for kind, arch, features in MODELS:
        params = model_params(kind, arch, features)
        if name in params:
            value = params[name]
            value = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
            where = kind if kind == features else f"{kind} ({features if arch == 'dense' else arch})"
            by_value.setdefault(value, []).append(where)
    if len(by_value) == 1 and len(next(iter(by_value.values()))) == len(MODELS):
        return next(iter(by_value))
    return "; ".join(f"{value} for {' and '.join(wheres)}" for value, wheres in by_value.items())
