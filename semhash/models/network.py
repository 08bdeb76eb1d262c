"""The Keras side of a StackedAutoencoder: layers, greedy pretraining and fine-tuning.

Imported only when a model is trained, since importing TensorFlow takes seconds.
"""

import contextlib
import math
import os
import sys
import tempfile

import numpy as np
import scipy.sparse as sp

from ..progress import progress_bar
from .autoencoder import OUTPUT_LOSSES


@contextlib.contextmanager
def _stderr_muted():
    """Silence what TensorFlow's C++ side prints on start-up (CUDA probes, oneDNN notes).

    Those lines bypass Python, so file descriptor 2 itself is pointed elsewhere; what
    was written is replayed if the block fails, so no real error is lost.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
with _stderr_muted():
    import tensorflow as tf

    tf.config.list_physical_devices()
    import keras


def seed_everything(seed):
    """Make weights, noise and batch order the same on every run with `seed`."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class Batches(keras.utils.PyDataset):
    """Mini-batches of rows of a dense array or CSR matrix, densified one batch at a time.

    The target is the batch itself or, when given, the same rows of `targets`; each target
    row is scaled to sum to one for a softmax reconstruction. Rows are shuffled each epoch
    by `rng`.
    """

    def __init__(self, inputs, batch_size, rng, normalize_target=False, shuffle=True, targets=None):
        super().__init__(workers=1, use_multiprocessing=False)
        self.inputs = inputs
        self.targets = targets
        self.batch_size = batch_size
        self.rng = rng
        self.normalize_target = normalize_target
        self.shuffle = shuffle
        self.order = np.arange(inputs.shape[0])
        self.on_epoch_end()

    def __len__(self):
        return math.ceil(self.inputs.shape[0] / self.batch_size)

    def __getitem__(self, index):
        rows = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        batch = _densified(self.inputs[rows])
        target = batch if self.targets is None else _densified(self.targets[rows])
        if not self.normalize_target:
            return batch, target
        totals = target.sum(axis=1, keepdims=True)
        return batch, target / np.maximum(totals, 1e-12)

    def on_epoch_end(self):
        if self.shuffle:
            self.rng.shuffle(self.order)


def _densified(rows):
    """float32 numpy rows of a dense array or CSR matrix."""
    rows = rows.toarray() if sp.issparse(rows) else np.asarray(rows)
    return rows.astype(np.float32, copy=False)


class CodeNoise(keras.layers.Layer):
    """Gaussian noise added before the code sigmoid while training, of any deviation.

    (Keras' own GaussianNoise accepts deviations up to 1; semantic hashing wants more.)
    """

    def __init__(self, stddev, **kwargs):
        super().__init__(**kwargs)
        self.stddev = stddev
        self.seed_generator = keras.random.SeedGenerator()

    def call(self, inputs, training=False):
        if not training:
            return inputs
        noise = keras.random.normal(keras.ops.shape(inputs), stddev=self.stddev, seed=self.seed_generator)
        return inputs + noise


class _BarCallback(keras.callbacks.Callback):
    def __init__(self, bar):
        super().__init__()
        self.bar = bar

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)


def train(model, batches, epochs, label, show_progress):
    """Fit `model` on `batches` with a progress bar; return the loss of each epoch."""
    with progress_bar(label, length=epochs * len(batches), show=show_progress) as bar:
        history = model.fit(batches, epochs=epochs, verbose=0, callbacks=[_BarCallback(bar)])
    return [float(loss) for loss in history.history.get("loss", [])]


class Stack:
    """The encoder and decoder Dense layers of a stacked autoencoder, shared by every
    network built from them: each pretraining autoencoder, the unrolled autoencoder
    and the encoder that is saved."""

    def __init__(self, sizes, activation, output_loss):
        self.sizes = sizes
        self.activation = activation
        self.output_loss = output_loss
        depth = len(sizes) - 1
        self.encoders = [keras.layers.Dense(sizes[i + 1], name=f"encode_{i}") for i in range(depth)]
        self.decoders = [keras.layers.Dense(sizes[i], name=f"decode_{i}") for i in range(depth)]
        for i in range(depth):  # initialise every weight now, before training draws any noise
            self.encoders[i].build((None, sizes[i]))
            self.decoders[i].build((None, sizes[i + 1]))

    @property
    def depth(self):
        return len(self.encoders)

    def _input_shape(self, layer):
        return (self.sizes[layer],)

    def _encode(self, layer, hidden):
        """Layer `layer` going down: activated, or for the code layer its pre-activation."""
        hidden = self.encoders[layer](hidden)
        return hidden if layer == self.depth - 1 else keras.layers.Activation(self.activation)(hidden)

    def _decode(self, layer, hidden):
        """Layer `layer` going up, before its activation."""
        return self.decoders[layer](hidden)

    def _decode_activation(self, layer):
        """Layer 0 rebuilds the input under the output loss; the others rebuild hidden units."""
        if layer == 0:
            return OUTPUT_LOSSES[self.output_loss][0]
        return None

    def _loss(self, layer):
        return OUTPUT_LOSSES[self.output_loss][1] if layer == 0 else "mean_squared_error"

    def _code(self, pre_activation, code_noise):
        if code_noise:
            pre_activation = CodeNoise(code_noise)(pre_activation)
        return keras.layers.Activation("sigmoid")(pre_activation)

    def _coded(self, input_noise, code_noise):
        """(input, sigmoid codes) through every encoder, the input corrupted by masking
        noise and the code layer by Gaussian noise while training, where those are set."""
        inputs = keras.Input(self._input_shape(0))
        hidden = keras.layers.Dropout(input_noise)(inputs) if input_noise else inputs
        for layer in range(self.depth - 1):
            hidden = self._encode(layer, hidden)
        return inputs, self._code(self._encode(self.depth - 1, hidden), code_noise)

    def layer_autoencoder(self, layer, input_noise, code_noise, learning_rate):
        """Autoencoder `layer` alone: corrupt its input, encode, rebuild the input."""
        inputs = keras.Input(self._input_shape(layer))
        hidden = keras.layers.Dropout(input_noise)(inputs) if input_noise else inputs
        hidden = self._encode(layer, hidden)
        if layer == self.depth - 1:
            hidden = self._code(hidden, code_noise)
        outputs = self._decode(layer, hidden)
        if self._decode_activation(layer):
            outputs = keras.layers.Activation(self._decode_activation(layer))(outputs)
        model = keras.Model(inputs, outputs)
        model.compile(keras.optimizers.Adam(learning_rate), loss=self._loss(layer))
        return model

    def unrolled(self, input_noise, code_noise, learning_rate):
        """The deep autoencoder: every encoder, then every decoder in reverse."""
        inputs, hidden = self._coded(input_noise, code_noise)
        for layer in reversed(range(self.depth)):
            hidden = self._decode(layer, hidden)
            activation = self._decode_activation(layer) if layer == 0 else self.activation
            if activation:
                hidden = keras.layers.Activation(activation)(hidden)
        model = keras.Model(inputs, hidden)
        model.compile(keras.optimizers.Adam(learning_rate), loss=self._loss(0))
        return model

    def coder(self, input_noise, code_noise, learning_rate):
        """The encoder alone, its (noisy) sigmoid codes trained towards given target codes
        under binary cross-entropy: with each row's target its label's hash centre, the
        codes of one label gather round one corner, far from the other labels'."""
        inputs, codes = self._coded(input_noise, code_noise)
        model = keras.Model(inputs, codes)
        model.compile(keras.optimizers.Adam(learning_rate), loss="binary_crossentropy")
        return model

    def encoder(self):
        """The encoder alone, input to sigmoid codes, for saving in Keras' format."""
        inputs, codes = self._coded(input_noise=0, code_noise=0)
        return keras.Model(inputs, codes, name="semhash_encoder")

    def encoder_weights(self):
        """[(kernel, bias), ...] of the encoder layers as numpy arrays."""
        return _arrays(self.encoders)

    def decoder_weights(self):
        """[(kernel, bias), ...] of the decoder layers as numpy arrays, layer 0 rebuilding the input."""
        return _arrays(self.decoders)


def _arrays(layers):
    """[(kernel, bias), ...] of Keras layers as float32 numpy arrays."""
    return [tuple(np.asarray(w, dtype=np.float32) for w in layer.get_weights()) for layer in layers]


class ConvStack(Stack):
    """A stacked convolutional autoencoder: blocks of 3x3 convolution and 2x2 max pooling
    down to a dense code layer, mirrored by 2x upsampling and 3x3 convolution back up.

    Block i (and finally the code layer) is one greedy pretraining step, as a Dense layer
    is in `Stack`; the layers are shared by every network built from them.
    """

    def __init__(self, image_shape, filters, bits, activation, output_loss):
        self.activation = activation
        self.output_loss = output_loss
        self.shapes = [tuple(image_shape)]
        for count in filters:
            height, width, _ = self.shapes[-1]
            self.shapes.append((height // 2, width // 2, count))
        top = self.shapes[-1]
        flat = top[0] * top[1] * top[2]
        self.encoders = [keras.layers.Conv2D(count, 3, padding="same", name=f"encode_{i}") for i, count in enumerate(filters)]
        self.encoders.append(keras.layers.Dense(bits, name=f"encode_{len(filters)}"))
        self.decoders = [
            keras.layers.Conv2D(self.shapes[i][2], 3, padding="same", name=f"decode_{i}") for i in range(len(filters))
        ]
        self.decoders.append(keras.layers.Dense(flat, name=f"decode_{len(filters)}"))
        for i, shape in enumerate(self.shapes[:-1]):
            self.encoders[i].build((None, *shape))
            self.decoders[i].build((None, 2 * (shape[0] // 2), 2 * (shape[1] // 2), filters[i]))
        self.encoders[-1].build((None, flat))
        self.decoders[-1].build((None, bits))

    def _encode(self, layer, hidden):
        """Block `layer` going down: convolution, activation, pooling (or the code's pre-activation)."""
        if layer == self.depth - 1:
            return self.encoders[layer](keras.layers.Flatten()(hidden))
        hidden = keras.layers.Activation(self.activation)(self.encoders[layer](hidden))
        return keras.layers.MaxPooling2D(2)(hidden)

    def _decode(self, layer, hidden):
        """Block `layer` going up, before its activation."""
        if layer == self.depth - 1:
            return keras.layers.Reshape(self.shapes[-1])(self.decoders[layer](hidden))
        return self.decoders[layer](keras.layers.UpSampling2D(2)(hidden))

    def _input_shape(self, layer):
        return self.shapes[layer]
