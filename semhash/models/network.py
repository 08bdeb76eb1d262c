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


class Batches:
    """Mini-batches of rows of a dense array or CSR matrix, with their targets.

    The target is the batch itself or, when given, the same rows of `targets`; each target
    row is scaled to sum to one for a softmax reconstruction. Rows are shuffled each epoch
    by `rng` (every epoch's order is drawn when `dataset` is asked for), and sorted within a
    batch. CSR rows are gathered and densified inside TensorFlow's graph, so no Python runs
    between steps (batches made in Python took a third of each step on text); dense rows are
    sliced in numpy. `sparse`: CSR rows stay a sparse tensor, for a network with a sparse input
    (the supervised coder's, see `Stack.coder`). (Fed to the autoencoders as a sparse tensor, the
    text rows trained codes that scored .008 lower precision@100 on THUCNews: docs/RESULTS.md.)
    """

    def __init__(self, inputs, batch_size, rng, normalize_target=False, shuffle=True, targets=None, sparse=False):
        self.inputs = inputs
        self.sparse = sparse
        self.targets = targets
        self.batch_size = batch_size
        self.rng = rng
        self.normalize_target = normalize_target
        self.shuffle = shuffle
        self.order = np.arange(inputs.shape[0])
        self._shuffled()

    def __len__(self):
        return math.ceil(self.inputs.shape[0] / self.batch_size)

    def _shuffled(self):
        if self.shuffle:
            self.rng.shuffle(self.order)

    def dataset(self, epochs):
        """A tf.data.Dataset of (input, target) batches for `epochs` epochs, one after another."""
        n_rows, size = self.inputs.shape[0], self.batch_size
        rows = []
        for _ in range(epochs):
            rows += [np.sort(self.order[start : start + size]) for start in range(0, n_rows, size)]
            self._shuffled()
        ends = np.cumsum([len(batch) for batch in rows], dtype=np.int64)
        starts = ends - np.array([len(batch) for batch in rows], dtype=np.int64)
        flat = tf.constant(np.concatenate(rows) if rows else np.empty(0, np.int64), dtype=tf.int64)
        inputs = _rows_of(self.inputs, sparse=self.sparse)
        itself = self.targets is None and not self.normalize_target
        targets = _rows_of(self.inputs if self.targets is None else self.targets, self.normalize_target)

        def batch(start, end):
            chosen = flat[start:end]
            rows = inputs(chosen)
            return rows, rows if itself else targets(chosen)

        windows = tf.data.Dataset.from_tensor_slices((starts, ends))
        return windows.map(batch).prefetch(1)


def _rows_of(matrix, normalize=False, sparse=False):
    """A function from row numbers to those rows of `matrix` as dense float32 tensors: a CSR
    matrix's gathered in the graph, a dense array's sliced in numpy. `normalize` scales each row
    to sum to one. `sparse`: a CSR matrix's rows stay a tf.SparseTensor."""
    if not sp.issparse(matrix):

        def sliced(chosen):
            rows = np.asarray(matrix[chosen], dtype=np.float32)
            if normalize:
                rows = rows / np.maximum(rows.sum(axis=1, keepdims=True), 1e-12)
            return rows

        def dense(chosen):
            rows = tf.numpy_function(sliced, [chosen], tf.float32, stateful=False)
            rows.set_shape((None, *matrix.shape[1:]))
            return rows

        return dense
    matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    matrix.sort_indices()
    if normalize:
        totals = np.asarray(matrix.sum(axis=1), dtype=np.float32).ravel()
        matrix = sp.csr_matrix(sp.diags(1 / np.maximum(totals, 1e-12)) @ matrix, dtype=np.float32)
        matrix.sort_indices()
    indptr = tf.constant(matrix.indptr, dtype=tf.int64)
    indices = tf.constant(matrix.indices, dtype=tf.int64)
    data = tf.constant(matrix.data, dtype=tf.float32)
    width = matrix.shape[1]

    def gathered(chosen):
        first, last = tf.gather(indptr, chosen), tf.gather(indptr, chosen + 1)
        places = tf.ragged.range(first, last)
        where = tf.stack([places.value_rowids(), tf.gather(indices, places.flat_values)], axis=1)
        rows = tf.SparseTensor(where, tf.gather(data, places.flat_values), [tf.size(chosen, tf.int64), width])
        return rows if sparse else tf.sparse.to_dense(rows)

    return gathered


class Adam(keras.optimizers.Adam):
    """Keras' Adam, each variable updated by TensorFlow's fused kernel (ResourceApplyAdam) in one
    pass over its weights and moments, where keras' update takes a dozen (the same formula)."""

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        step = keras.ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = keras.ops.cast(self.beta_1, dtype), keras.ops.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
            beta1_power=keras.ops.power(beta_1, step), beta2_power=keras.ops.power(beta_2, step),
            lr=keras.ops.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=keras.ops.cast(self.epsilon, dtype), grad=keras.ops.cast(gradient, dtype))


class SparseMaskingNoise(keras.layers.Layer):
    """Masking noise on a sparse batch while training: each stored value zeroed with probability
    `rate` and the rest scaled by 1 / (1 - rate), as keras' Dropout masks a dense batch (whose
    zeros it leaves zero)."""

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed_generator = keras.random.SeedGenerator()

    def call(self, inputs, training=False):
        if not training:
            return inputs
        kept = keras.random.uniform(tf.shape(inputs.values), seed=self.seed_generator) >= self.rate
        values = tf.where(kept, inputs.values / (1 - self.rate), tf.zeros_like(inputs.values))
        return tf.SparseTensor(inputs.indices, values, inputs.dense_shape)


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


class BernoulliCode(keras.layers.Layer):
    """A variational code layer (as NASH's): while training, each unit is a Bernoulli bit drawn
    with its sigmoid's probability, the gradient passed straight through to the sigmoid, and a
    KL penalty to Bernoulli(.5), summed over the units and weighted `kl_weight`, keeps the bits
    uncertain enough to carry information. Otherwise the sigmoid itself."""

    def __init__(self, kl_weight, sampled=True, **kwargs):
        super().__init__(**kwargs)
        self.kl_weight = kl_weight
        self.sampled = sampled
        self.seed_generator = keras.random.SeedGenerator()

    def call(self, inputs, training=False):
        ops = keras.ops
        codes = ops.sigmoid(inputs)
        if not training:
            return codes
        if self.kl_weight:
            p = ops.clip(codes, 1e-7, 1 - 1e-7)
            divergence = p * ops.log(2 * p) + (1 - p) * ops.log(2 * (1 - p))
            self.add_loss(self.kl_weight * ops.mean(ops.sum(divergence, axis=1)))
        if not self.sampled:
            return codes
        drawn = ops.cast(keras.random.uniform(ops.shape(codes), seed=self.seed_generator) < codes, codes.dtype)
        return codes + ops.stop_gradient(drawn - codes)


class CodeSparsity(keras.layers.Layer):
    """An L1 penalty on the (sigmoid, so non-negative) codes while training: `weight` times each
    row's sum of its code units, averaged over the batch. Passes the codes on unchanged."""

    def __init__(self, weight, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight

    def call(self, inputs, training=False):
        if training:
            self.add_loss(self.weight * keras.ops.mean(keras.ops.sum(keras.ops.abs(inputs), axis=1)))
        return inputs


class CodeLayer:
    """How the code layer's sigmoid trains (see `StackedAutoencoder`): "noise" adds Gaussian noise
    of deviation `noise` before it; "variational" draws Bernoulli bits with a KL penalty weighted
    `kl_weight` (`BernoulliCode`); `sparsity` weighs an L1 penalty on the codes (`CodeSparsity`)."""

    def __init__(self, kind="noise", noise=8.0, kl_weight=0.01, sparsity=0.0):
        self.kind = kind
        self.noise = noise
        self.kl_weight = kl_weight
        self.sparsity = sparsity

    def __call__(self, pre_activation, trained=True, sampled=True):
        """Sigmoid codes of `pre_activation`, as trained (`trained`) or plain. Codes trained towards
        target bits (`sampled` False) are not drawn as bits, whose gradient the loss would clip."""
        if not trained:
            return keras.layers.Activation("sigmoid")(pre_activation)
        if self.kind == "variational":
            codes = BernoulliCode(self.kl_weight, sampled)(pre_activation)
        else:
            noisy = CodeNoise(self.noise)(pre_activation) if self.noise else pre_activation
            codes = keras.layers.Activation("sigmoid")(noisy)
        return CodeSparsity(self.sparsity)(codes) if self.sparsity else codes


class _BarCallback(keras.callbacks.Callback):
    def __init__(self, bar):
        super().__init__()
        self.bar = bar

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)


def train(model, batches, epochs, label, show_progress):
    """Fit `model` on `batches` with a progress bar; return the loss of each epoch."""
    with progress_bar(label, length=epochs * len(batches), show=show_progress) as bar:
        history = model.fit(batches.dataset(epochs), epochs=epochs, steps_per_epoch=len(batches), shuffle=False, verbose=0,
                            callbacks=[_BarCallback(bar)])
    return [float(loss) for loss in history.history.get("loss", [])]


class Stack:
    """The encoder and decoder Dense layers of a stacked autoencoder, shared by every
    network built from them: each pretraining autoencoder, the unrolled autoencoder
    and the encoder that is saved. `code`: how the code layer trains (a `CodeLayer`)."""

    def __init__(self, sizes, activation, output_loss, code=None):
        self.sizes = sizes
        self.code = code or CodeLayer()
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

    def _input(self, layer, input_noise, sparse=False):
        """(keras.Input of layer `layer`, sparse where `sparse` says, that input corrupted by
        masking noise of rate `input_noise` while training, where it is set)."""
        inputs = keras.Input(self._input_shape(layer), sparse=sparse)
        if not input_noise:
            return inputs, inputs
        return inputs, (SparseMaskingNoise if sparse else keras.layers.Dropout)(input_noise)(inputs)

    def _coded(self, input_noise, trained=True, sampled=True, sparse=False):
        """(input, sigmoid codes) through every encoder, the input (sparse where `sparse` says)
        corrupted by masking noise where it is set, and the code layer as it trains (`trained`;
        see `CodeLayer`)."""
        inputs, hidden = self._input(0, input_noise, sparse)
        for layer in range(self.depth - 1):
            hidden = self._encode(layer, hidden)
        return inputs, self.code(self._encode(self.depth - 1, hidden), trained, sampled)

    def layer_autoencoder(self, layer, input_noise, learning_rate):
        """Autoencoder `layer` alone: corrupt its input, encode, rebuild the input."""
        inputs, hidden = self._input(layer, input_noise)
        hidden = self._encode(layer, hidden)
        if layer == self.depth - 1:
            hidden = self.code(hidden)
        outputs = self._decode(layer, hidden)
        if self._decode_activation(layer):
            outputs = keras.layers.Activation(self._decode_activation(layer))(outputs)
        model = keras.Model(inputs, outputs)
        model.compile(Adam(learning_rate), loss=self._loss(layer))
        return model

    def unrolled(self, input_noise, learning_rate):
        """The deep autoencoder: every encoder, then every decoder in reverse."""
        inputs, hidden = self._coded(input_noise)
        for layer in reversed(range(self.depth)):
            hidden = self._decode(layer, hidden)
            activation = self._decode_activation(layer) if layer == 0 else self.activation
            if activation:
                hidden = keras.layers.Activation(activation)(hidden)
        model = keras.Model(inputs, hidden)
        model.compile(Adam(learning_rate), loss=self._loss(0))
        return model

    def coder(self, input_noise, learning_rate, sparse=False):
        """The encoder alone, its (noisy) sigmoid codes trained towards given target codes
        under binary cross-entropy: with each row's target its label's hash centre, the
        codes of one label gather round one corner, far from the other labels'. `sparse`: it
        reads sparse batches, whose product with the first kernel costs their stored values
        alone, where the autoencoders' dense batches cost every term (no decoder follows to cost
        as much again)."""
        inputs, codes = self._coded(input_noise, sampled=False, sparse=sparse)
        model = keras.Model(inputs, codes)
        model.compile(Adam(learning_rate), loss="binary_crossentropy")
        return model

    def encoder(self):
        """The encoder alone, input to sigmoid codes, for saving in Keras' format."""
        inputs, codes = self._coded(input_noise=0, trained=False)
        return keras.Model(inputs, codes, name="semhash_encoder")

    def encoder_weights(self):
        """[(kernel, bias), ...] of the encoder layers as numpy arrays."""
        return _arrays(self.encoders)

    def decoder_weights(self):
        """[(kernel, bias), ...] of the decoder layers as numpy arrays, layer 0 rebuilding the input."""
        return _arrays(self.decoders)


def encoder_of(weights, activation):
    """The Keras encoder (input to sigmoid codes) with these dense [(kernel, bias), ...] weights,
    as a stack of members joined into one is saved."""
    sizes = [weights[0][0].shape[0], *(kernel.shape[1] for kernel, _ in weights)]
    stack = Stack(sizes, activation, output_loss="softmax")
    for layer, (kernel, bias) in zip(stack.encoders, weights):
        layer.set_weights([kernel, bias])
    return stack.encoder()


def _arrays(layers):
    """[(kernel, bias), ...] of Keras layers as float32 numpy arrays."""
    return [tuple(np.asarray(w, dtype=np.float32) for w in layer.get_weights()) for layer in layers]


class ConvStack(Stack):
    """A stacked convolutional autoencoder: blocks of 3x3 convolution and 2x2 max pooling
    down to a dense code layer, mirrored by 2x upsampling and 3x3 convolution back up.

    Block i (and finally the code layer) is one greedy pretraining step, as a Dense layer
    is in `Stack`; the layers are shared by every network built from them.
    """

    def __init__(self, image_shape, filters, bits, activation, output_loss, code=None):
        self.code = code or CodeLayer()
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
