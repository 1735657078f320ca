"""Batch normalisation through TensorFlow's fused kernel: the layer the nets are built from.

Keras 3 computes batch normalisation in training from its parts (``moments``, then ``tf.nn.batch_normalization``:
a dozen element-wise passes forward and as many back). On 2 CPU cores that was half of the compact CNN's training
step at 28 px (`bench/train_speed.py`). ``FusedBatchNormV3`` does the same arithmetic in one pass each way.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="advxai")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras' batch normalisation, trained through ``tf.nn.fused_batch_norm`` for 4-D channels-last float32 maps.

    Same statistics as Keras: the batch is normalised by its biased variance, and the moving variance is updated
    with the biased variance too (the fused kernel returns the unbiased one, n/(n-1) larger; it is rescaled).
    Inference, frozen layers, masks, renormalisation, cross-replica statistics, other shapes or dtypes and other
    backends use Keras' own code.
    """

    def _fused(self, inputs, training, mask) -> bool:
        return (training and self.trainable and not self.renorm and not self.synchronized and mask is None
                and len(inputs.shape) == 4
                and self.axis in (-1, 3) and self.center and self.scale and inputs.dtype == tf.float32
                and keras.backend.backend() == "tensorflow")

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        y, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(inputs, self.gamma, self.beta, epsilon=self.epsilon,
                                                             data_format="NHWC", is_training=True)
        n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), tf.float32)
        variance = unbiased * tf.maximum(n - 1.0, 0.0) / n
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return y
