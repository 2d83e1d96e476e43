"""`own_function`: a `tf.function` per object, counted apart by TensorFlow's retracing detector.

A construction builds one trainer (and one statistics callback) per iteration, and each traces
its functions once, for its own model and variables: that is not retracing. TensorFlow keys its
"N out of the last M calls to ... triggered tf.function retracing" warning by the traced
method's code object, which all instances of a class share, so from the fifth trainer of a
process on (the paper's 5 iterations and the final network) every first call of a function
called once per training (evaluation, batch-norm re-estimation, the statistics' reset) looked
like a retrace and printed the warning. A `functools.partial` has no code object, so the
detector keys on the instance's own function; a real retrace inside one instance (say, a new
input shape on every call) still warns.
"""

from __future__ import annotations

import functools

import tensorflow as tf


def own_function(method, **kwargs):
    """`tf.function(method, **kwargs)`, its retracing counted apart from other instances'."""
    return tf.function(functools.partial(method), **kwargs)
