"""StackedAutoencoder: greedy layer-wise pretraining, end-to-end fine-tuning, binary codes.

Training runs in Keras (see `network`); inference runs in numpy from the stored weights,
so encoding a query never imports TensorFlow.
"""

import math
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .errors import SemhashError
from .progress import progress_bar

ENCODER_KERAS = "encoder.keras"
ENCODER_WEIGHTS = "encoder.npz"
CHUNK_ROWS = 4096

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
    and Hinton's semantic hashing) drives the codes towards 0 and 1. Each bit is then
    thresholded at its median over the training rows, so each splits them evenly.

    output_loss: how the input is rebuilt: "softmax" (cross-entropy against each row
    scaled to sum to one, for bags of words), "bce" (inputs in [0, 1]) or "mse".

    epochs: of fine-tuning, extended where needed so that fine-tuning makes at least
    `min_steps` updates: a small corpus gets few updates an epoch. (Measured: longer
    training lowers the loss but hurts retrieval on 20 Newsgroups; too few updates hurt
    the bundled corpus. See benchmarks/text_defaults.py.)
    batch_size: rows per step, or "auto": a 32nd of the rows, between 16 and 128.

    Fitted attributes: `weights_` ([(kernel, bias)] of the encoder), `thresholds_`
    (per-bit threshold on the code layer's pre-activation), `encoder_` (the Keras
    encoder, only on a model trained in this process), `history_` (losses).
    """

    def __init__(
        self,
        hidden=(256,),
        bits=64,
        activation="relu",
        output_loss="softmax",
        input_noise=0.2,
        code_noise=8.0,
        pretrain_epochs=5,
        epochs=10,
        min_steps=400,
        batch_size="auto",
        learning_rate=1e-3,
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
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed
        self.verbose = verbose

    def get_params(self):
        names = (
            "hidden", "bits", "activation", "output_loss", "input_noise", "code_noise",
            "pretrain_epochs", "epochs", "min_steps", "batch_size", "learning_rate", "seed",
        )
        params = {name: getattr(self, name) for name in names}
        params["hidden"] = list(params["hidden"])
        return params

    def _check_params(self, n_rows):
        from .network import OUTPUT_LOSSES

        if self.activation not in ACTIVATIONS:
            raise SemhashError(f"unknown activation {self.activation!r}; choose from {', '.join(ACTIVATIONS)}")
        if self.output_loss not in OUTPUT_LOSSES:
            raise SemhashError(f"unknown output loss {self.output_loss!r}; choose from {', '.join(OUTPUT_LOSSES)}")
        if not 1 <= self.bits <= 1024:
            raise SemhashError(f"bits must be between 1 and 1024, not {self.bits}")
        if self.batch_size != "auto" and not (isinstance(self.batch_size, int) and self.batch_size > 0):
            raise SemhashError(f"batch_size must be a positive integer or 'auto', not {self.batch_size!r}")
        if n_rows < 2:
            raise SemhashError(f"need at least 2 rows to learn codes from, got {n_rows}; add documents")

    def _batch_rows(self, n_rows):
        if self.batch_size == "auto":
            return min(128, max(16, n_rows // 32))
        return self.batch_size

    def fit(self, X):
        """Pretrain each layer, fine-tune the unrolled autoencoder, fit bit thresholds."""
        from . import network

        self._check_params(X.shape[0])
        network.seed_everything(self.seed)
        rng = np.random.default_rng(self.seed)
        stack = network.Stack([X.shape[1], *self.hidden, self.bits], self.activation, self.output_loss)
        softmax = self.output_loss == "softmax"
        batch_rows = self._batch_rows(X.shape[0])
        self.history_ = {"pretrain": []}
        inputs = X
        for layer in range(stack.depth):
            last = layer == stack.depth - 1
            autoencoder = stack.layer_autoencoder(
                layer, self.input_noise, self.code_noise if last else 0, self.learning_rate
            )
            batches = network.Batches(inputs, batch_rows, rng, normalize_target=softmax and layer == 0)
            label = f"pretraining layer {layer + 1}/{stack.depth}"
            self.history_["pretrain"].append(
                network.train(autoencoder, batches, self.pretrain_epochs, label, self.verbose)
            )
            if not last:
                kernel, bias = stack.encoders[layer].get_weights()
                inputs = self._layer_forward(inputs, kernel, bias, ACTIVATIONS[self.activation])
        unrolled = stack.unrolled(self.input_noise, self.code_noise, self.learning_rate)
        whole = network.Batches(X, batch_rows, rng, normalize_target=softmax, shuffle=False)
        self.history_["loss_before_finetuning"] = float(unrolled.evaluate(whole, verbose=0))
        finetune_batches = network.Batches(X, batch_rows, rng, normalize_target=softmax)
        epochs = max(self.epochs, math.ceil(self.min_steps / len(finetune_batches))) if self.epochs else 0
        self.history_["finetune_epochs"] = epochs
        self.history_["finetune"] = network.train(unrolled, finetune_batches, epochs, "fine-tuning", self.verbose)
        self.history_["loss_after_finetuning"] = float(unrolled.evaluate(whole, verbose=0))
        self.encoder_ = stack.encoder()
        self.weights_ = stack.encoder_weights()
        self.thresholds_ = np.median(self._logits(X), axis=0).astype(np.float32)
        return self

    @staticmethod
    def _layer_forward(inputs, kernel, bias, activation):
        """One dense layer over rows of an array or CSR matrix, in chunks of rows."""
        outputs = np.empty((inputs.shape[0], kernel.shape[1]), dtype=np.float32)
        for start in range(0, inputs.shape[0], CHUNK_ROWS):
            chunk = inputs[start : start + CHUNK_ROWS]
            product = chunk @ kernel if sp.issparse(chunk) else np.asarray(chunk, dtype=np.float32) @ kernel
            outputs[start : start + CHUNK_ROWS] = activation(np.asarray(product) + bias)
        return outputs

    def _logits(self, X):
        """The code layer's pre-activation for each row of X."""
        if not hasattr(self, "weights_"):
            raise SemhashError("this StackedAutoencoder is not fitted yet; call fit first")
        expected = self.weights_[0][0].shape[0]
        if X.shape[1] != expected:
            raise SemhashError(f"input has {X.shape[1]} columns but the model was fitted on {expected}")
        hidden = X
        for kernel, bias in self.weights_[:-1]:
            hidden = self._layer_forward(hidden, kernel, bias, ACTIVATIONS[self.activation])
        kernel, bias = self.weights_[-1]
        return self._layer_forward(hidden, kernel, bias, lambda x: x)

    def transform(self, X):
        """Real-valued codes in (0, 1), one row of `bits` per row of X."""
        return ACTIVATIONS["sigmoid"](self._logits(X))

    def fit_transform(self, X):
        return self.fit(X).transform(X)

    def encode(self, X, progress_label=None):
        """Binary codes (bool array, rows by bits), each bit cut at its fitted median."""
        rows = range(0, X.shape[0], CHUNK_ROWS)
        codes = np.empty((X.shape[0], self.bits), dtype=bool)
        with progress_bar(progress_label or "encoding", rows, show=self.verbose and progress_label) as bar:
            for start in bar:
                codes[start : start + CHUNK_ROWS] = self._logits(X[start : start + CHUNK_ROWS]) > self.thresholds_
        return codes

    def save(self, folder):
        """Write the encoder in Keras' format (when trained here) and as numpy weights."""
        folder = Path(folder)
        if getattr(self, "encoder_", None) is not None:
            self.encoder_.save(folder / ENCODER_KERAS)
        arrays = {"thresholds": self.thresholds_}
        for i, (kernel, bias) in enumerate(self.weights_):
            arrays[f"kernel_{i}"] = kernel
            arrays[f"bias_{i}"] = bias
        np.savez(folder / ENCODER_WEIGHTS, **arrays)
        return self.get_params()

    @classmethod
    def load(cls, folder, params):
        """A fitted model from `save`'s folder and params, for inference (no TensorFlow)."""
        model = cls(**{**params, "hidden": tuple(params["hidden"])})
        with np.load(Path(folder) / ENCODER_WEIGHTS, allow_pickle=False) as arrays:
            depth = len(model.hidden) + 1
            model.weights_ = [(arrays[f"kernel_{i}"], arrays[f"bias_{i}"]) for i in range(depth)]
            model.thresholds_ = arrays["thresholds"]
        return model
