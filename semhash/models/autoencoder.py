"""StackedAutoencoder: greedy layer-wise pretraining, end-to-end fine-tuning, binary codes.

Training runs in Keras (see `network`); inference runs in numpy from the stored weights,
so encoding a query never imports TensorFlow.
"""

import inspect
import math
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.linalg import block_diag

from ..codes.binarize import ITQ_ITERATIONS, cut, hash_centres, median_thresholds, pca_itq, principal_components
from ..codes.neighbours import (
    NEIGHBOUR_METRICS,
    nearest_others,
    neighbour_graph_eigenvectors,
    neighbour_space,
    spectral_clusters,
)
from ..errors import SemhashError
from ..progress import progress_bar
from .baselines import PCAITQ

ENCODER_KERAS = "encoder.keras"
ENCODER_WEIGHTS = "encoder.npz"
DECODER_WEIGHTS = "decoder.npz"

BINARIZERS = ("median", "itq")
CODE_LAYERS = ("noise", "variational")
# code_noise "auto": the noise before the code sigmoid for codes of up to SHORT_CODE_BITS bits, and beyond.
SHORT_CODE_BITS, SHORT_CODE_NOISE, LONG_CODE_NOISE = 16, 6.0, 8.0
# members "auto": codes learned without labels come from JOINED_MEMBERS autoencoders; member_bits "auto": each
# member's code layer is an equal share of the bits, and at least MEMBER_BITS wide. Before the joined code layer
# is cut, each unit is squashed: tanh(value / (SQUASH x its standard deviation over the training rows)).
JOINED_MEMBERS, MEMBER_BITS, SQUASH = 4, 32, 1.5
# principal_axes "auto": beside several members, the input's top PRINCIPAL_AXES principal axes join the code layer.
PRINCIPAL_AXES = 32
# graph_eigenvectors "auto": beside several members that learn from neighbours, GRAPH_EIGENVECTORS units learned
# from the neighbour graph join the code layer, read from the hidden layer by ridge regression of weight GRAPH_RIDGE.
GRAPH_EIGENVECTORS, GRAPH_RIDGE = 64, 100.0
# clusters "auto": beside a graph member, learned without labels, one more member for each of CLUSTERS learns that many
# spectral clusters of the graph as its labels (self-training, finer and coarser); their squashed units weigh
# CLUSTER_WEIGHT in the cut.
CLUSTERS, CLUSTER_WEIGHT = (64, 16), 0.5
# epochs "auto": FINETUNE_EPOCHS of fine-tuning the unrolled autoencoder, or none where labels fine-tune the encoder.
FINETUNE_EPOCHS = 10
# What a model saved before these parameters existed was built with, where their "auto" now means more.
SAVED_BEFORE = {"members": 1, "principal_axes": 0, "graph_eigenvectors": 0, "clusters": 0}
# name: (activation of the reconstruction, Keras loss), as names, so that checking a model's
# parameters needs no TensorFlow; `network` builds the layers from them.
OUTPUT_LOSSES = {
    "softmax": ("softmax", "categorical_crossentropy"),
    "bce": ("sigmoid", "binary_crossentropy"),
    "mse": (None, "mean_squared_error"),
}
ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
}


class StackedAutoencoder:
    """A deep autoencoder whose sigmoid code layer becomes a binary hash.

    Each layer is pretrained greedily as a denoising autoencoder (masking noise of rate
    `input_noise` on its input) that rebuilds the codes of the layer below; the layers
    are then unrolled into one deep autoencoder and fine-tuned end to end. Gaussian
    noise of standard deviation `code_noise` before the code sigmoid (as in Salakhutdinov
    and Hinton's semantic hashing) drives the codes towards 0 and 1. The code layer is then
    turned into bits as `binarize` says. code_noise "auto" is 6 for codes of 16 bits or fewer and
    8 for longer ones. (Measured precision@100 at 16 bits, noise 8 / 6 / 4: 20 Newsgroups .482 /
    .532 / .516, THUCNews .564 / .578 / .565; at 32 bits on 20 Newsgroups 8 leads, .591 against
    .584 at 6. See docs/RESULTS.md.)

    output_loss: how the input is rebuilt: "softmax" (cross-entropy against each row
    scaled to sum to one, for bags of words), "bce" (inputs in [0, 1]) or "mse".

    epochs: of fine-tuning the unrolled autoencoder, or "auto": FINETUNE_EPOCHS, or none where labels
    are given, whose own fine-tuning of the encoder follows (measured on 20 Newsgroups at 64 bits:
    .8193 precision@100 without it against .8212 with it, in 40% of the time; see docs/RESULTS.md).
    Epochs are extended where needed so that fine-tuning makes at least
    `min_steps` updates: a small corpus gets few updates an epoch (a 32nd of it a batch, so
    32 below 4,096 rows). (Measured: longer training lowers the loss but hurts retrieval on
    20 Newsgroups, .567 against .593 at 32 bits with 1,800 updates; 780 updates instead of 400
    lifted 20 Newsgroups subsets of 1,000 and 4,000 posts at 32 bits from .297 and .411 to
    .358 and .471 precision, and left 20 Newsgroups and THUCNews, which make 890 and 790
    updates in 10 epochs, as they were. See docs/RESULTS.md, "Training updates on
    small corpora".)
    min_pretrain_steps: each pretraining layer likewise runs `pretrain_epochs`, extended until it has
    made at least this many updates. (Measured: 390 lifted the same subsets further, to .380 and .491;
    20 Newsgroups and THUCNews already make 445 and 395 in 5 epochs.)
    batch_size: rows per step, or "auto": a 32nd of the rows, between 16 and 128.
    supervised_epochs: of supervised fine-tuning, when `fit` is given labels. (Measured on
    20 Newsgroups at 64 bits: codes trained towards hash centres, .807 precision@100; a
    softmax over the labels on the code layer instead, .775.)
    neighbours, neighbour_weight: the first layer and the unrolled autoencoder rebuild
    each row mixed with the mean of its `neighbours` nearest rows of X, weighted
    `neighbour_weight`, so that documents near each other learn to share codes (as in
    neighbour-reconstructing semantic hashing); 0 rebuilds each row alone. (Measured on
    20 Newsgroups at 64 bits: 10 neighbours, weight .5: .579 precision@100 against .532.)
    neighbour_metric: how rows are compared to find those neighbours: "idf-cosine" (bags of
    words) or "euclidean" (images); see `codes.neighbours.neighbour_space`.

    code_layer: how the code layer trains: "noise", the Gaussian noise of `code_noise` before its
    sigmoid; or "variational", each unit drawn as a Bernoulli bit of its sigmoid (the gradient
    passed straight through) with a KL penalty to Bernoulli(.5) weighted `kl_weight`, as NASH
    does. sparsity: the weight of an L1 penalty on the sigmoid codes (each row's sum, averaged
    over a batch); 0 for none. (Measured on 20 Newsgroups at 64 bits: variational .591, L1 of
    .001 .618, against the defaults' .618 precision@100; see docs/RESULTS.md.)

    members, member_bits: how many autoencoders are trained, each with a code layer of `member_bits`
    units on its own seed (`seed` x members + its number). Their code layers side by side are one
    wider code layer; each of its units is squashed, tanh(value / (`SQUASH` x its standard deviation
    over the training rows)), so that no member's outlying units lead the principal components, and the
    squashed layer is cut into `bits` by PCA-ITQ (its top principal components, rotated). Joined, they
    are one wider encoder (the members' first layers side by side, every deeper layer block-diagonal),
    saved and read as any other. members "auto" is 4, or 1 where the model learns from labels or keeps
    its decoder; member_bits "auto" is an equal share of the bits, at least 32, so that 16 to 128 bits
    are cut from the same four members (see `cut_to`). (Measured by `semhash evaluate`, precision@100
    at 16 / 32 / 64 / 128 bits: 20 Newsgroups, one autoencoder .514 / .589 / .618 / .635, two members
    unsquashed .556 / .599 / .625 / .641, four squashed .572 / .628 / .645 / .656. Each member is a
    whole training, so training takes four times as long as one autoencoder's. See docs/RESULTS.md,
    "Members".)
    principal_axes: how many of the input rows' top principal axes (fewer where the rows span fewer)
    join the members' code layers, as one more, linear member, before the squash and the cut: what a
    linear hash keeps of the input, beside what the autoencoders learned. It is carried through the
    relu hidden layers as relu(z) and relu(-z) (their difference is z), so the joined encoder is still
    dense layers alone. "auto" is PRINCIPAL_AXES beside several members (with relu layers), else 0.
    (Measured by `semhash evaluate`, precision@100 at 16 / 32 / 64 / 128 bits, four members without and
    with 32 axes: 20 Newsgroups .572 / .628 / .645 / .656 and .583 / .631 / .653 / .665, THUCNews .619 /
    .650 / .664 / .674 and .616 / .657 / .670 / .678. See docs/RESULTS.md, "Principal axes".)
    graph_eigenvectors: how many units learned from the neighbour graph (the graph member) join the code
    layer beside the members and the axes, before the squash and the cut: the top eigenvectors of the
    graph joining each row to its `neighbours` nearest by the input and as many in the members' and axes'
    joined code layer, predicted from the joined last hidden layer by ridge regression, so the encoder is
    still dense layers alone (see `_with_graph_member`). "auto" is GRAPH_EIGENVECTORS beside several
    members with hidden layers and neighbours, else 0. (Measured by `semhash evaluate`, precision@100 at
    16 / 32 / 64 / 128 bits, 20 Newsgroups: .600 / .646 / .663 / .675, where the same members scored .581 /
    .643 / .658 / .667 with the input's neighbours alone in the graph; THUCNews .627 / .656 / .673 / .683
    against .625 / .658 / .671 / .682. See docs/RESULTS.md, "The graph member's neighbours".)
    clusters: how many spectral clusters of the graph member's graph (k-means of its eigenvectors) label
    the rows for one more member, trained on them as labels are trained (each cluster's codes drawn
    to a hash centre) and joined after the graph member, its squashed units weighed CLUSTER_WEIGHT in
    the cut: self-training, the corpus' own clusters taught back to a network that codes a new item
    from its terms. Several counts train one such member each. "auto" is CLUSTERS beside a graph member
    where no labels are given, else 0.
    (Measured by `semhash evaluate`, precision@100 at 16 / 32 / 64 / 128 bits: 20 Newsgroups .600 / .646
    / .663 / .675 without, .598 / .657 / .671 / .681 with 64 clusters' member, .605 / .655 / .673 / .684
    with 64 and 16; THUCNews .627 / .656 / .673 / .683, .628 / .657 / .674 / .683 and .634 / .659 / .674 /
    .684. With 64 clusters' member at weight .7, 20 Newsgroups .607 / .656 / .672 / .688 and THUCNews .629
    / .662 / .671 / .680. See docs/RESULTS.md, "The cluster member" and "Two cluster members".)

    X may be CSR bag-of-words rows, dense rows, or images (rows, height, width, channels),
    which are taken as pixel vectors.

    binarize: how the code layer becomes bits: "itq" rotates the centred code layer as
    iterative quantization does (Gong and Lazebnik), then takes signs; "median" cuts each
    unit at its median over the training rows, so each bit splits them evenly. (Measured on
    20 Newsgroups at 64 bits: itq .520, median .477 precision@100; see docs/RESULTS.md.)

    keep_decoder: also keep the decoder's weights (saved as decoder.npz), so that `reconstruct`
    rebuilds items from their codes; the defaults keep it where the items are pixels, whose
    rebuilding can be shown beside the original (see `defaults`), and nowhere else, where it
    would only add to the index. The codes are the same either way.

    Fitted attributes: `weights_` ([(kernel, bias)] of the encoder), `thresholds_`
    (the point the code layer's pre-activation is centred on before binarizing),
    `rotation_` (code layer by bits, applied after centring; the identity for "median"), `encoder_` (the Keras
    encoder, only on a model trained in this process), `history_` (losses), `decoder_weights_`
    ([(kernel, bias)] of the decoder, numbered as the encoder's: layer 0 rebuilds the input; only
    with `keep_decoder`), `scales_` (each joined code unit's squashing scale; None for one member),
    `unit_weights_` (each joined unit's weight in the cut, folded into `thresholds_` and `rotation_`;
    None where all weigh alike).
    """

    arch = "dense"
    chunk_rows = 4096  # rows per numpy forward pass

    def __init__(
        self,
        hidden=(256,),
        bits=64,
        activation="relu",
        output_loss="softmax",
        input_noise=0.2,
        code_noise="auto",
        pretrain_epochs=5,
        epochs="auto",
        min_steps=780,
        min_pretrain_steps=390,
        batch_size="auto",
        learning_rate=1e-3,
        supervised_epochs=30,
        binarize="itq",
        neighbours=10,
        neighbour_weight=0.5,
        neighbour_metric="idf-cosine",
        keep_decoder=False,
        code_layer="noise",
        kl_weight=0.01,
        sparsity=0.0,
        members="auto",
        member_bits="auto",
        principal_axes="auto",
        graph_eigenvectors="auto",
        clusters="auto",
        seed=0,
        verbose=False,
    ):
        self.hidden = hidden
        self.bits = bits
        self.activation = activation
        self.output_loss = output_loss
        self.input_noise = input_noise
        self.code_noise = code_noise
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.min_steps = min_steps
        self.min_pretrain_steps = min_pretrain_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.supervised_epochs = supervised_epochs
        self.binarize = binarize
        self.neighbours = neighbours
        self.neighbour_weight = neighbour_weight
        self.neighbour_metric = neighbour_metric
        self.keep_decoder = keep_decoder
        self.code_layer = code_layer
        self.kl_weight = kl_weight
        self.sparsity = sparsity
        self.members = members
        self.member_bits = member_bits
        self.principal_axes = principal_axes
        self.graph_eigenvectors = graph_eigenvectors
        self.clusters = clusters
        self.seed = seed
        self.verbose = verbose

    def get_params(self):
        """The constructor's parameters (all but `verbose`), as JSON can store them."""
        names = [name for name in inspect.signature(type(self).__init__).parameters if name not in ("self", "verbose")]
        params = {name: getattr(self, name) for name in names}
        return {name: list(value) if isinstance(value, tuple) else value for name, value in params.items()}

    def _check_params(self, X):
        n_rows = X.shape[0]
        if self.activation not in ACTIVATIONS:
            raise SemhashError(f"unknown activation {self.activation!r}; choose from {', '.join(ACTIVATIONS)}")
        if self.output_loss not in OUTPUT_LOSSES:
            raise SemhashError(f"unknown output loss {self.output_loss!r}; choose from {', '.join(OUTPUT_LOSSES)}")
        if self.binarize not in BINARIZERS:
            raise SemhashError(f"unknown binarize {self.binarize!r}; choose from {', '.join(BINARIZERS)}")
        if not 1 <= self.bits <= 1024:
            raise SemhashError(f"bits must be between 1 and 1024, not {self.bits}")
        if self.batch_size != "auto" and not (isinstance(self.batch_size, int) and self.batch_size > 0):
            raise SemhashError(f"batch_size must be a positive integer or 'auto', not {self.batch_size!r}")
        if self.epochs != "auto" and not (isinstance(self.epochs, int) and self.epochs >= 0):
            raise SemhashError(f"epochs must be a whole number, 0 or more, or 'auto', not {self.epochs!r}")
        for name in ("neighbours", "min_steps", "min_pretrain_steps"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 0):
                raise SemhashError(f"{name} must be a whole number, 0 or more, not {value!r}")
        if not 0 <= self.neighbour_weight <= 1:
            raise SemhashError(f"neighbour_weight must be between 0 and 1, not {self.neighbour_weight!r}")
        if self.neighbour_metric not in NEIGHBOUR_METRICS:
            raise SemhashError(
                f"unknown neighbour_metric {self.neighbour_metric!r}; choose from {', '.join(NEIGHBOUR_METRICS)}"
            )
        if self.code_noise != "auto" and not _non_negative(self.code_noise):
            raise SemhashError(f"code_noise must be a number, 0 or more, or 'auto', not {self.code_noise!r}")
        if self.code_layer not in CODE_LAYERS:
            raise SemhashError(f"unknown code_layer {self.code_layer!r}; choose from {', '.join(CODE_LAYERS)}")
        for name in ("kl_weight", "sparsity"):
            value = getattr(self, name)
            if not _non_negative(value):
                raise SemhashError(f"{name} must be a number, 0 or more, not {value!r}")
        for name, least in (("members", 1), ("member_bits", 1), ("principal_axes", 0), ("graph_eigenvectors", 0)):
            value = getattr(self, name)
            if value != "auto" and not _whole(value, least):
                raise SemhashError(f"{name} must be a whole number, {least} or more, or 'auto', not {value!r}")
        counts = isinstance(self.clusters, (tuple, list)) and all(_whole(count, 1) for count in self.clusters)
        if self.clusters != "auto" and not (_whole(self.clusters, 0) or counts):
            raise SemhashError("clusters must be a whole number, 0 or more, several positive ones, or 'auto', "
                               f"not {self.clusters!r}")
        if self._principal_axes() and self.activation != "relu":
            raise SemhashError(f"principal axes join the code layer through relu layers, not {self.activation}; "
                               "set principal_axes to 0 or the activation to relu")
        if self._graph_eigenvectors() and not (self.hidden and self.neighbours):
            raise SemhashError("the graph member is read from a hidden layer, over the neighbours' graph; "
                               "set graph_eigenvectors to 0, or give hidden layers and neighbours")
        if self._clusters() and not self._graph_eigenvectors():
            raise SemhashError("the cluster member learns the graph member's clusters; "
                               "set clusters to 0, or give graph_eigenvectors")
        members = self._members()
        if members > 1 and members * self._member_bits() < self.bits:
            raise SemhashError(f"{members} members of {self.member_bits} bits cannot make {self.bits}; "
                               "choose wider members or more of them")
        if members > 1 and self.keep_decoder:
            raise SemhashError("a model of several members keeps no decoder; set members to 1 or keep_decoder off")
        if n_rows < 2:
            raise SemhashError(f"need at least 2 rows to learn codes from, got {n_rows}; add documents")

    def _code_noise(self):
        if self.code_noise == "auto":
            return SHORT_CODE_NOISE if self.bits <= SHORT_CODE_BITS else LONG_CODE_NOISE
        return self.code_noise

    def _finetune_epochs(self, y=None):
        """Epochs of fine-tuning the unrolled autoencoder: "auto" is FINETUNE_EPOCHS, or none with
        labels, whose own fine-tuning of the encoder follows."""
        if self.epochs == "auto":
            return 0 if y is not None else FINETUNE_EPOCHS
        return self.epochs

    def _members(self, y=None):
        """How many autoencoders are trained: "auto" is JOINED_MEMBERS, or one with labels or a decoder kept."""
        if self.members == "auto":
            return 1 if y is not None or self.keep_decoder else JOINED_MEMBERS
        return self.members

    def _principal_axes(self, y=None):
        """How many of the input's principal axes join the members' code layers (fewer where the rows
        span fewer): "auto" is PRINCIPAL_AXES beside several members (and relu layers to carry them),
        else none."""
        if self.principal_axes == "auto":
            return PRINCIPAL_AXES if self._members(y) > 1 and self.activation == "relu" else 0
        return self.principal_axes

    def _graph_eigenvectors(self, y=None):
        """How many units learned from the neighbour graph join the code layer (fewer on a small corpus):
        "auto" is GRAPH_EIGENVECTORS beside several members that learn from neighbours, else none."""
        if self.graph_eigenvectors == "auto":
            return GRAPH_EIGENVECTORS if self._members(y) > 1 and self.hidden and self.neighbours else 0
        return self.graph_eigenvectors

    def _clusters(self, y=None):
        """The counts of spectral clusters of the graph member's graph that one more member each learns as
        labels: "auto" is CLUSTERS beside a graph member where no labels are given, else none; a number is
        one count (0 none)."""
        if self.clusters == "auto":
            return CLUSTERS if y is None and self._graph_eigenvectors(y) else ()
        if isinstance(self.clusters, int):
            return (self.clusters,) if self.clusters else ()
        return tuple(self.clusters)

    def _member_bits(self):
        if self.member_bits == "auto":
            return max(math.ceil(self.bits / self._members()), MEMBER_BITS)
        return self.member_bits

    @staticmethod
    def _epochs(epochs, min_steps, batches):
        """`epochs`, or more where that many passes over `batches` would make fewer than `min_steps`
        updates; none where `epochs` is 0."""
        return max(epochs, math.ceil(min_steps / len(batches))) if epochs else 0

    def _batch_rows(self, n_rows):
        if self.batch_size == "auto":
            return min(128, max(16, n_rows // 32))
        return self.batch_size

    def _stack(self, X):
        """The Keras layers for inputs shaped like X (imports TensorFlow)."""
        from .network import Stack

        return Stack([X.shape[1], *self.hidden, self.bits], self.activation, self.output_loss, self._code())

    def _code(self):
        """The code layer as it trains (imports TensorFlow)."""
        from .network import CodeLayer

        return CodeLayer(self.code_layer, self._code_noise(), self.kl_weight, self.sparsity)

    def _as_input(self, X):
        """Rows as the network takes them: images are flattened into pixel vectors."""
        if not sp.issparse(X) and X.ndim > 2:
            return X.reshape(X.shape[0], -1)
        return X

    def fit(self, X, y=None):
        """Pretrain each layer, fine-tune the unrolled autoencoder, fit the binarization.

        y: optional labels of the rows. When given, each label gets a hash centre (see
        `hash_centres`) and the encoder is then fine-tuned further for `supervised_epochs`
        to bring each row's code to its label's centre, so that codes of one label gather
        together, far from the other labels'.
        """
        self._fit(X, y)
        return self

    def fit_encode(self, X, y=None):
        """`fit`, then the codes of X, from the pass over X that fitted the binarization."""
        return self._binary(self._fit(X, y))

    def _fit(self, X, y):
        """Train as `fit` says; return the code layer's pre-activation for each row of X."""
        from . import network

        X = self._as_input(X)
        self._check_params(X)
        if self._members(y) > 1 or self._principal_axes(y) or self._graph_eigenvectors(y):
            return self._fit_members(X, y)
        self.unit_weights_ = None
        network.seed_everything(self.seed)
        rng = np.random.default_rng(self.seed)
        stack = self._stack(X)
        softmax = self.output_loss == "softmax"
        batch_rows = self._batch_rows(X.shape[0])
        self.history_ = {"pretrain": []}
        targets = self._targets(X, y)
        inputs = X
        for layer in range(stack.depth):
            last = layer == stack.depth - 1
            autoencoder = stack.layer_autoencoder(layer, self.input_noise, self.learning_rate)
            batches = network.Batches(
                inputs, batch_rows, rng, normalize_target=softmax and layer == 0, targets=targets if layer == 0 else None
            )
            label = f"pretraining layer {layer + 1}/{stack.depth}"
            epochs = self._epochs(self.pretrain_epochs, self.min_pretrain_steps, batches)
            self.history_["pretrain"].append(network.train(autoencoder, batches, epochs, label, self.verbose))
            if not last:
                weights = [np.asarray(w, dtype=np.float32) for w in stack.encoders[layer].get_weights()]
                inputs = self._chunked(self._hidden_layer, inputs, weights, f"coding layer {layer + 1}/{stack.depth}")
        finetune_batches = network.Batches(X, batch_rows, rng, normalize_target=softmax, targets=targets)
        epochs = self._epochs(self._finetune_epochs(y), self.min_steps, finetune_batches)
        self.history_["finetune_epochs"] = epochs
        if epochs:
            unrolled = stack.unrolled(self.input_noise, self.learning_rate)
            whole = network.Batches(X, batch_rows, rng, normalize_target=softmax, shuffle=False, targets=targets)
            self.history_["loss_before_finetuning"] = float(unrolled.evaluate(whole.dataset(1), verbose=0))
            self.history_["finetune"] = network.train(unrolled, finetune_batches, epochs, "fine-tuning", self.verbose)
            self.history_["loss_after_finetuning"] = float(unrolled.evaluate(whole.dataset(1), verbose=0))
        if y is not None:
            classes, numbers = np.unique(np.asarray(y), return_inverse=True)
            centres = hash_centres(len(classes), self.bits, self.seed)
            coder = stack.coder(self.input_noise, self.learning_rate, sparse=sp.issparse(X))
            labelled = network.Batches(X, batch_rows, rng, targets=centres[numbers], sparse=sp.issparse(X))
            self.history_["supervised"] = network.train(
                coder, labelled, self.supervised_epochs, "supervised fine-tuning", self.verbose
            )
        self.encoder_ = stack.encoder()
        self.weights_ = stack.encoder_weights()
        if self.keep_decoder:
            self.decoder_weights_ = stack.decoder_weights()
        self.scales_ = None
        logits = self._logits(X, progress_label="encoding")
        self._fit_binarizer(logits)
        return logits

    def _fit_members(self, X, y):
        """Train each member (`member_bits` bits, seed `seed` x members + its number) as `_fit`
        does, join them into one encoder whose code layer is the members' side by side (their first
        layers stacked, each deeper layer block-diagonal), add the axes, the graph member and the
        cluster members where asked, and binarize that joined layer to `bits`.
        Returns the joined code layer's pre-activation."""
        from . import network

        count, axes, graph, clusters = self._members(y), self._principal_axes(y), self._graph_eigenvectors(y), self._clusters(y)
        params = {**self.get_params(), "bits": self._member_bits(), "members": 1, "member_bits": "auto",
                  "principal_axes": 0, "graph_eigenvectors": 0, "clusters": 0}
        fitted = [type(self)(**{**params, "seed": self.seed * count + i}, verbose=self.verbose) for i in range(count)]
        for member in fitted:
            member._fit(X, y)
        joined = [member.weights_ for member in fitted]
        if axes:
            joined.append(_axes_through_relu(X, axes, len(self.hidden), self.seed))
        self.weights_ = _joined(joined)
        self.history_ = {"members": [member.history_ for member in fitted]}
        self.unit_weights_ = None
        if graph:
            eigenvectors = self._graph_targets(X, y, graph)
            self.weights_[-1] = self._with_graph_member(X, eigenvectors)
            if clusters:
                self._join_cluster_members(X, eigenvectors, clusters, params, seed=self.seed * count + count)
        self.encoder_ = network.encoder_of(self.weights_, self.activation)
        logits = self._logits(X, progress_label="encoding")
        self.scales_ = squash_scales(logits)
        self._fit_binarizer(self._squashed(logits))
        return logits

    def _join_cluster_members(self, X, eigenvectors, clusters, params, seed):
        """Train one member (`params`, seeds from `seed` on) on each count of `clusters` spectral clusters of
        the graph's `eigenvectors` as labels, and join them after the graph member, their units weighing
        CLUSTER_WEIGHT in the cut (`unit_weights_`)."""
        members = []
        for number, count in enumerate(clusters):
            labels = spectral_clusters(eigenvectors, count, self.seed)
            member = type(self)(**{**params, "seed": seed + number}, verbose=self.verbose)
            member._fit(X, labels)
            members.append(member)
            self.history_.setdefault("cluster_members", []).append({"clusters": int(labels.max()) + 1, **member.history_})
        self.unit_weights_ = np.concatenate([np.ones(self.weights_[-1][0].shape[-1], dtype=np.float32),
                                             *(np.full(member.bits, CLUSTER_WEIGHT, dtype=np.float32) for member in members)])
        self.weights_ = _joined([self.weights_, *(member.weights_ for member in members)])

    def _graph_targets(self, X, y, count):
        """The graph member's targets: the top `count` eigenvectors of the graph joining each row of X to its
        `neighbours` nearest by the input (as the members' targets find them) and to its `neighbours`
        nearest in the joined code layer (the members' and the axes' units, squashed as the cut squashes
        them, centred; by cosine). The joined layer's neighbours share a topic far more often than the
        input's (on 20 Newsgroups, .654 precision@100 by cosine against .414)."""
        _, by_input = self._rows_and_nearest(X, y)
        logits = self._logits(X)
        joined = np.tanh(logits / squash_scales(logits))
        by_codes = self._nearest(joined - joined.mean(axis=0), "cosine", y)
        return neighbour_graph_eigenvectors(np.hstack([by_input, by_codes]), count, self.seed)

    def _with_graph_member(self, X, targets):
        """The joined code layer's (kernel, bias) with the graph member's units beside it: `targets` (see
        `_graph_targets`) predicted from the last hidden layer by ridge regression, so that a new item is
        coded from its own terms (self-taught hashing, Zhang et al. 2010). The members rebuild their
        neighbours one row at a time; the graph's eigenvectors see its clusters whole."""
        hidden_layers = self.weights_[:-1]
        hidden = (self._last_hidden(X[start : start + self.chunk_rows], hidden_layers)
                  for start in range(0, X.shape[0], self.chunk_rows))
        graph, intercept = ridge_readout(hidden, targets, GRAPH_RIDGE)
        kernel, bias = self.weights_[-1]
        return np.hstack([kernel, graph]).astype(np.float32), np.concatenate([bias, intercept]).astype(np.float32)

    def shares_members_with(self, model):
        """Whether this fitted model's members are the ones the unfitted `model` would train: it has
        several, learned here without labels, and `model` differs from it in `bits` alone, with the
        same members of the same width. Then `cut_to(model.bits, X)` is `model` fitted on X
        without labels, without training again."""
        members = getattr(self, "history_", {}).get("members")  # none on a loaded model: unknown how learned
        if not members or "supervised" in members[0] or type(model) is not type(self):
            return False
        others = {**model.get_params(), "bits": self.bits}
        return (others == self.get_params() and model._members() == self._members()
                and model._member_bits() == self._member_bits())

    def cut_to(self, bits, X):
        """A model of these members whose joined code layer is cut into `bits` (fitted again over
        X, the rows this one was fitted on): the model `fit` would train at `bits` (see
        `shares_members_with`), for the cost of encoding X instead of training again."""
        model = type(self)(**{**self.get_params(), "bits": bits}, verbose=self.verbose)
        if not self.shares_members_with(model):
            raise SemhashError(f"this model's members cannot be cut to {bits} bits without training again")
        model._check_params(self._as_input(X))
        model.weights_, model.scales_, model.history_ = self.weights_, self.scales_, {**self.history_}
        model.unit_weights_ = self.unit_weights_
        model.encoder_ = getattr(self, "encoder_", None)
        model._fit_binarizer(model._squashed(model._logits(X, progress_label="encoding")))
        return model

    def _targets(self, X, y=None):
        """What the first layer and the unrolled autoencoder rebuild: each row mixed with the
        mean of its `neighbours` nearest other rows by `neighbour_metric`, the mean weighted by
        `neighbour_weight`; None to rebuild the rows alone. With labels y, a row's neighbours are
        sought among the rows of its label.

        Rebuilt through a softmax, rows are mixed as word distributions (each scaled to sum to one)."""
        if not self.neighbours or not self.neighbour_weight:
            return None
        rows, others = self._rows_and_nearest(X, y)
        n_rows, k = others.shape
        if self.output_loss == "softmax":
            totals = np.asarray(rows.sum(axis=1), dtype=np.float32).ravel()
            rows = sp.diags(1 / np.maximum(totals, 1e-12)) @ rows
        weight = self.neighbour_weight
        mixing = sp.csr_matrix(
            (np.full(n_rows * k, weight / k, dtype=np.float32), others.ravel(), np.arange(0, n_rows * k + 1, k)),
            shape=(n_rows, n_rows),
        ) + sp.identity(n_rows, dtype=np.float32, format="csr") * (1 - weight)
        targets = mixing @ rows
        return sp.csr_matrix(targets, dtype=np.float32) if sp.issparse(targets) else targets.reshape(X.shape).astype(np.float32)

    def _rows_and_nearest(self, X, y):
        """(X's rows as vectors, each row's `neighbours` nearest others by `neighbour_metric`; see `_nearest`)."""
        rows = X if sp.issparse(X) else np.asarray(X, dtype=np.float32).reshape(X.shape[0], -1)
        return rows, self._nearest(*neighbour_space(rows, self.neighbour_metric), y)

    def _nearest(self, rows, metric, y):
        """Each row's `neighbours` nearest other rows, among the rows of its label if y is given
        (where its label has too few rows, the farthest found is repeated, or the row itself)."""
        if y is None:
            return nearest_others(rows, self.neighbours, metric, self.seed, bool(self.verbose))
        _, numbers = np.unique(np.asarray(y), return_inverse=True)
        others = np.repeat(np.arange(rows.shape[0])[:, None], min(self.neighbours, rows.shape[0] - 1), axis=1)
        for label in range(numbers.max() + 1):
            members = np.flatnonzero(numbers == label)
            if len(members) > 1:
                found = members[nearest_others(rows[members], others.shape[1], metric, self.seed)]
                others[members] = np.pad(found, ((0, 0), (0, others.shape[1] - found.shape[1])), mode="edge")
        return others

    def _fit_binarizer(self, layer):
        """Fit `thresholds_` and `rotation_` (code layer by bits). ITQ takes the code layer's top
        `bits` principal components (all of them, where it is as wide as the code), rotated; it
        needs more rows than bits and a code layer of full rank. Where it has neither (a tiny
        corpus), or `binarize` is "median", the first `bits` units are cut at their medians instead,
        and `history_["binarize"]` says which was used. No margin beyond that: medians drop a joined
        layer's axes and graph member (the bundled corpus' 240 items at 128 bits: .214 precision@100
        against .237 rotated; see docs/RESULTS.md). Each unit counts `unit_weights_` times in the cut
        (where there are some), folded into the thresholds and the rotation, so the cut applies to the
        layer as it is."""
        weights = self.unit_weights_
        if weights is not None:
            layer = layer * weights
        self.history_["binarize"] = "median"
        if self.binarize == "itq" and layer.shape[0] > self.bits:
            try:
                mean, components, rotation, _ = pca_itq(layer, self.bits, ITQ_ITERATIONS, self.seed)
            except SemhashError:
                pass
            else:
                self.thresholds_, self.rotation_ = mean.astype(np.float32), (components @ rotation).astype(np.float32)
                self.history_["binarize"] = "itq"
        if self.history_["binarize"] == "median":
            self.thresholds_ = median_thresholds(layer).astype(np.float32)
            self.rotation_ = np.eye(layer.shape[1], self.bits, dtype=np.float32)
        if weights is not None:
            self.thresholds_ = (self.thresholds_ / weights).astype(np.float32)
            self.rotation_ = (weights[:, None] * self.rotation_).astype(np.float32)

    def _chunked(self, layer, inputs, weights, progress_label=None):
        """`layer(chunk, weights)` over an array or CSR matrix, a chunk of rows at a time,
        with a progress bar when `progress_label` is given and the model is verbose."""
        rows = self.chunk_rows
        starts = range(0, inputs.shape[0], rows)
        with progress_bar(progress_label, starts, show=bool(self.verbose and progress_label)) as bar:
            outputs = [layer(inputs[start : start + rows], weights) for start in bar]
        return np.concatenate(outputs) if outputs else np.empty((0,), dtype=np.float32)

    def _last_hidden(self, chunk, hidden_layers):
        """A chunk of rows through every hidden layer of `hidden_layers` ([(kernel, bias)])."""
        for layer in hidden_layers:
            chunk = self._hidden_layer(chunk, layer)
        return chunk

    def _hidden_layer(self, chunk, weights):
        kernel, bias = weights
        return ACTIVATIONS[self.activation](self._dense(chunk, kernel, bias))

    def _activated(self, values, name):
        """`values` through the activation `name` (None for none; softmax over the last axis)."""
        if name is None:
            return values
        if name == "softmax":
            exp = np.exp(values - values.max(axis=-1, keepdims=True))
            return exp / exp.sum(axis=-1, keepdims=True)
        return ACTIVATIONS[name](values)

    def _decoder_activation(self, layer):
        """Decoder layer 0 rebuilds the input under the output loss; the others hidden units."""
        return OUTPUT_LOSSES[self.output_loss][0] if layer == 0 else self.activation

    def _decoder_layer(self, chunk, weights, layer, shape):
        """Decoder layer `layer` going up, activated as in training; `shape`: the input's."""
        kernel, bias = weights
        return self._activated(self._dense(chunk, kernel, bias), self._decoder_activation(layer))

    @staticmethod
    def _dense(chunk, kernel, bias):
        product = chunk @ kernel if sp.issparse(chunk) else np.asarray(chunk, dtype=np.float32) @ kernel
        return np.asarray(product) + bias

    def _code_layer(self, chunk, weights):
        kernel, bias = weights
        if chunk.ndim > 2:
            chunk = chunk.reshape(chunk.shape[0], -1)
        return self._dense(chunk, kernel, bias)

    def _logits(self, X, progress_label=None):
        """The code layer's pre-activation for each row of X."""
        if not hasattr(self, "weights_"):
            raise SemhashError(f"this {type(self).__name__} is not fitted yet; call fit first")
        X = self._as_input(X)
        self._check_input_shape(X)

        def forward(chunk, weights):
            return self._code_layer(self._last_hidden(chunk, weights[:-1]), weights[-1])

        width = self.weights_[-1][0].shape[-1]
        return self._chunked(forward, X, self.weights_, progress_label).reshape(X.shape[0], width)

    def _check_input_shape(self, X):
        expected = self.weights_[0][0].shape[0]
        if X.shape[1] != expected:
            raise SemhashError(f"input has {X.shape[1]} columns but the model was fitted on {expected}")

    def transform(self, X):
        """Real-valued codes in (0, 1), one row of `bits` per row of X."""
        return ACTIVATIONS["sigmoid"](self._logits(X))

    def fit_transform(self, X, y=None):
        """`fit`, then the real-valued codes of X, from the pass that fitted the binarization."""
        return ACTIVATIONS["sigmoid"](self._fit(X, y))

    def encode(self, X, progress_label=None):
        """Binary codes (bool array, rows by bits), as the fitted binarization cuts them."""
        return self._binary(self._logits(X, progress_label))

    def projections(self, X):
        """The real values whose signs are the bits of X's codes (rows by bits): how far each
        code falls on each side of each cut, which ranks codes at equal Hamming distance."""
        return (self._squashed(self._logits(X)) - self.thresholds_) @ self.rotation_

    def _binary(self, logits):
        return cut(self._squashed(logits), self.thresholds_, self.rotation_)

    def _squashed(self, logits):
        """The code layer as the binarization cuts it: a joined one squashed unit by unit (`scales_`)."""
        return logits if self.scales_ is None else np.tanh(logits / self.scales_)

    @property
    def can_reconstruct(self):
        """Whether the decoder was kept (see `keep_decoder`), so that `reconstruct` can rebuild items."""
        return getattr(self, "decoder_weights_", None) is not None

    def reconstruct(self, X):
        """X rebuilt by the autoencoder, shaped as X: its real-valued codes (as `transform` gives
        them) through the decoder, as the unrolled network was trained to rebuild it."""
        if not self.can_reconstruct:
            raise SemhashError(f"this {type(self).__name__} kept no decoder, so it cannot rebuild items; "
                               "fit it with keep_decoder=True")
        hidden = self.transform(X)
        for layer in reversed(range(len(self.decoder_weights_))):
            hidden = self._decoder_layer(hidden, self.decoder_weights_[layer], layer, X.shape)
        return hidden.reshape(X.shape)

    def save(self, folder):
        """Write the encoder in Keras' format (when trained here) and as numpy weights."""
        folder = Path(folder)
        if getattr(self, "encoder_", None) is not None:
            self.encoder_.save(folder / ENCODER_KERAS)
        arrays = {"thresholds": self.thresholds_, "rotation": self.rotation_, **_layer_arrays(self.weights_)}
        if self.scales_ is not None:
            arrays["scales"] = self.scales_
        np.savez(folder / ENCODER_WEIGHTS, **arrays)
        if self.can_reconstruct:
            np.savez(folder / DECODER_WEIGHTS, **_layer_arrays(self.decoder_weights_))
        return {"arch": self.arch, **self.get_params()}

    @classmethod
    def load(cls, folder, params):
        """A fitted model from `save`'s folder and params, for inference (no TensorFlow).

        Params this version does not know (training settings added later) are passed over:
        inference needs only the stored weights. The decoder is read where it was kept (indexes
        written before decoders were kept have none)."""
        known = inspect.signature(cls.__init__).parameters
        params = {name: tuple(value) if isinstance(value, list) else value for name, value in params.items() if name in known}
        params = {**{name: value for name, value in SAVED_BEFORE.items() if name in known}, **params}
        model = cls(**params)
        with np.load(Path(folder) / ENCODER_WEIGHTS, allow_pickle=False) as arrays:
            model.weights_ = _layers(arrays)
            model.thresholds_ = arrays["thresholds"]
            model.rotation_ = arrays["rotation"] if "rotation" in arrays.files else np.eye(model.bits, dtype=np.float32)
            model.scales_ = arrays["scales"] if "scales" in arrays.files else None
        if model.keep_decoder and (Path(folder) / DECODER_WEIGHTS).is_file():
            with np.load(Path(folder) / DECODER_WEIGHTS, allow_pickle=False) as arrays:
                model.decoder_weights_ = _layers(arrays)
        return model


def squash_scales(logits):
    """Each unit's scale in the squash tanh(value / scale) that weighs the units of a joined code
    layer alike: SQUASH x its spread over `logits` (rows by units), or SQUASH alone where it has none."""
    spread = logits.std(axis=0)
    return (SQUASH * np.where(spread > 0, spread, 1)).astype(np.float32)


def ridge_readout(chunks, targets, alpha):
    """(coefficients, intercept) of the ridge regression (weight `alpha`) of `targets` (rows by outputs) on
    the rows that `chunks` yields in order, centred: the intercept centres the predictions over these rows
    (the cut centres them anyway). Summed up a chunk at a time, so the rows are never held whole."""
    gram = cross = total = 0.0
    rows = 0
    for chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.float64)
        gram = gram + chunk.T @ chunk
        cross = cross + chunk.T @ targets[rows : rows + chunk.shape[0]]
        total = total + chunk.sum(axis=0)
        rows += chunk.shape[0]
    mean = total / rows
    centred_gram = gram - rows * np.outer(mean, mean)
    centred_cross = cross - np.outer(mean, targets.sum(axis=0))
    coefficients = np.linalg.solve(centred_gram + alpha * np.eye(len(mean)), centred_cross)
    return coefficients, -(mean @ coefficients)


def _axes_through_relu(X, axes, hidden_layers, seed):
    """[(kernel, bias)] of a linear member: dense layers whose code layer is exactly the rows' projections
    onto their top `axes` principal axes (fewer where they span fewer), (x - mean) @ directions, carried
    through relu hidden layers as relu(z) and relu(-z), whose difference is z. Joined beside the
    autoencoders, it adds what a linear hash keeps of the input to what they learned."""
    mean, directions = principal_components(X, axes, seed, at_most=True)
    kernel, offset = directions.astype(np.float32), (mean @ directions).astype(np.float32)
    if not hidden_layers:
        return [(kernel, -offset)]
    width = kernel.shape[1]
    both = np.eye(2 * width, dtype=np.float32)
    layers = [(np.hstack([kernel, -kernel]), np.concatenate([-offset, offset]))]
    layers += [(both, np.zeros(2 * width, dtype=np.float32))] * (hidden_layers - 1)
    return [*layers, (both[:, :width] - both[:, width:], np.zeros(width, dtype=np.float32))]


def _joined(members):
    """[(kernel, bias)] of one encoder from several members' layers ([(kernel, bias)] each, as deep): their
    first layers side by side, each deeper layer block-diagonal, so the code layer is theirs in order."""
    layers = zip(*members)
    first = next(layers)
    joined = [(np.hstack([kernel for kernel, _ in first]), np.concatenate([bias for _, bias in first]))]
    return joined + [(block_diag(*(kernel for kernel, _ in layer)).astype(np.float32),
                      np.concatenate([bias for _, bias in layer])) for layer in layers]


def _layer_arrays(layers):
    """{kernel_i, bias_i} of [(kernel, bias)], as .npz files hold them."""
    arrays = {}
    for i, (kernel, bias) in enumerate(layers):
        arrays[f"kernel_{i}"], arrays[f"bias_{i}"] = kernel, bias
    return arrays


def _layers(arrays):
    """[(kernel, bias)] from an .npz file written from `_layer_arrays`."""
    depth = sum(1 for name in arrays.files if name.startswith("kernel_"))
    return [(arrays[f"kernel_{i}"], arrays[f"bias_{i}"]) for i in range(depth)]


class ConvStackedAutoencoder(StackedAutoencoder):
    """A stacked convolutional autoencoder over images, ending in the same binary code.

    Each block (3x3 convolutions with `filters[i]` channels, then 2x2 max pooling) is
    pretrained greedily as a denoising autoencoder that rebuilds its input through 2x
    upsampling and a 3x3 convolution; then a dense code layer over the last block; then
    the unrolled network is fine-tuned end to end, as in `StackedAutoencoder`, whose
    other parameters these are, save that images are rebuilt alone (`neighbours=0`) unless
    asked, and compared by Euclidean distance when they are. Takes arrays shaped (rows,
    height, width, channels), with height and width divisible by 2 for each block.
    """

    arch = "conv"
    chunk_rows = 256

    def __init__(
        self,
        filters=(32, 64, 128),
        bits=64,
        activation="relu",
        output_loss="mse",
        input_noise=0.1,
        code_noise=4.0,
        pretrain_epochs=1,
        epochs=3,
        min_steps=400,
        min_pretrain_steps=0,
        batch_size="auto",
        learning_rate=1e-3,
        supervised_epochs=30,
        binarize="median",
        neighbours=0,
        neighbour_weight=0.5,
        neighbour_metric="euclidean",
        keep_decoder=True,
        code_layer="noise",
        kl_weight=0.01,
        sparsity=0.0,
        seed=0,
        verbose=False,
    ):
        super().__init__(
            hidden=(), bits=bits, activation=activation, output_loss=output_loss, input_noise=input_noise,
            code_noise=code_noise, pretrain_epochs=pretrain_epochs, epochs=epochs, min_steps=min_steps,
            min_pretrain_steps=min_pretrain_steps,
            batch_size=batch_size, learning_rate=learning_rate, supervised_epochs=supervised_epochs,
            binarize=binarize, neighbours=neighbours, neighbour_weight=neighbour_weight,
            neighbour_metric=neighbour_metric, keep_decoder=keep_decoder, code_layer=code_layer, kl_weight=kl_weight,
            sparsity=sparsity, members=1, seed=seed, verbose=verbose,
        )  # no dense hidden layers: the convolution blocks stand in their place
        self.filters = filters

    def _check_params(self, X):
        super()._check_params(X)
        if not self.filters or any(count < 1 for count in self.filters):
            raise SemhashError(f"filters must be positive channel counts, one a block, not {self.filters!r}")
        step = 2 ** len(self.filters)
        if X.shape[1] % step or X.shape[2] % step:
            raise SemhashError(
                f"{len(self.filters)} pooling blocks need images whose sides divide by {step}, not "
                f"{X.shape[1]}x{X.shape[2]}; choose another --size or fewer blocks"
            )

    def _stack(self, X):
        from .network import ConvStack

        return ConvStack(X.shape[1:], self.filters, self.bits, self.activation, self.output_loss, self._code())

    def _as_input(self, X):
        if sp.issparse(X) or X.ndim != 4:
            raise SemhashError(f"a convolutional model takes images shaped (rows, height, width, channels), not {X.shape}")
        return X

    @staticmethod
    def _convolved(chunk, kernel, bias):
        """A 3x3 convolution padded to the same size, as Keras' Conv2D computes it."""
        padded = np.pad(np.asarray(chunk, dtype=np.float32), ((0, 0), (1, 1), (1, 1), (0, 0)))
        windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
        return np.einsum("nhwcij,ijcf->nhwf", windows, kernel, optimize=True) + bias

    def _hidden_layer(self, chunk, weights):
        """A block in numpy: 3x3 convolution padded to the same size, activation, 2x2 max pooling."""
        convolved = ACTIVATIONS[self.activation](self._convolved(chunk, *weights))
        rows, height, width, channels = convolved.shape
        return convolved.reshape(rows, height // 2, 2, width // 2, 2, channels).max(axis=(2, 4))

    def _decoder_layer(self, chunk, weights, layer, shape):
        """A block going up: the code layer's dense decoder reshaped to the top block's maps, or
        2x upsampling (nearest) and a 3x3 convolution; activated as in training."""
        kernel, bias = weights
        if layer == len(self.decoder_weights_) - 1:
            scale = 2 ** layer
            maps = (len(chunk), shape[1] // scale, shape[2] // scale, self.weights_[-2][0].shape[3])
            return self._activated(self._dense(chunk, kernel, bias).reshape(maps), self.activation)
        upsampled = np.repeat(np.repeat(chunk, 2, axis=1), 2, axis=2)
        return self._activated(self._convolved(upsampled, kernel, bias), self._decoder_activation(layer))

    def _check_input_shape(self, X):
        channels = self.weights_[0][0].shape[2]
        flat = self.weights_[-1][0].shape[0]
        scale = 2 ** (len(self.weights_) - 1)
        found = (X.shape[1] // scale) * (X.shape[2] // scale) * self.weights_[-2][0].shape[3]
        if X.shape[3] != channels or found != flat:
            raise SemhashError(f"images shaped {X.shape[1:]} do not fit a model fitted on other images")


def _whole(value, least):
    """Whether a setting is a whole number, `least` or more (not a bool, which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _non_negative(value):
    """Whether a setting is a finite number, 0 or more (not a bool, which Python counts as one)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value < math.inf


ARCHITECTURES = {model.arch: model for model in (StackedAutoencoder, ConvStackedAutoencoder)}
# What an index may hold: the autoencoders, or the PCA-ITQ code a self-check chose (see `selfcheck`).
STORED_MODELS = {**ARCHITECTURES, PCAITQ.arch: PCAITQ}


def load_model(folder, params):
    """The fitted model saved in `folder`, of the architecture its params name."""
    arch = params.get("arch", "dense")
    if arch not in STORED_MODELS:
        raise SemhashError(f"{folder} holds a {arch!r} model, which this semhash does not know; upgrade semhash")
    return STORED_MODELS[arch].load(folder, params)
