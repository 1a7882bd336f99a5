"""Data: raw formats, TFDS builders, tf.data pipeline, synthetic faces. The only package that imports TensorFlow."""
