"""The textbook's architectures on top of ``rj.RNN``, each a frozen config with pure ``init``/``apply``.

============  ==========================================  =======================================
architecture  class                                       example
============  ==========================================  =======================================
one-to-one    :class:`FeedForward`                        the FNN baseline on the same data
one-to-many   :class:`OneToMany`                          captioning, generation from one input
many-to-one   :class:`ManyToOne`                          sentiment, the adding problem
many-to-many  :class:`ManyToMany` (aligned),              tagging, next-step prediction,
              :class:`Seq2Seq` (encoder-decoder)          translation
language      :class:`LanguageModel`                      text generation from a seed
============  ==========================================  =======================================

Every recurrent model ends in the output layer ``y_t = g(V a_t + c)``: ``apply`` returns the
pre-activation ``V a_t + c`` (logits, or the regression output with g the identity) and the
losses in :mod:`rnnjax.losses` apply ``g``. Token inputs are embedded by a table ``E: (vocab, d)``.

:func:`to_config` and :func:`from_config` (:mod:`rnnjax.models.definition`) write a model's definition as
JSON and read it back: what ``fit(model=...)`` saves beside its checkpoints.
"""

from rnnjax.models.conditional import OneToMany, OneToManyParams, Seq2Seq, Seq2SeqParams, shift_right
from rnnjax.models.definition import MODELS, from_config, init_args, to_config
from rnnjax.models.layers import Dense, check_tokens, dense, dense_init, last_hidden
from rnnjax.models.sequence import FeedForward, LanguageModel, ManyToMany, ManyToOne, SequenceParams

__all__ = [
    "MODELS", "Dense", "FeedForward", "LanguageModel", "ManyToMany", "ManyToOne", "OneToMany", "OneToManyParams",
    "Seq2Seq", "Seq2SeqParams", "SequenceParams", "check_tokens", "dense", "dense_init", "from_config", "init_args",
    "last_hidden", "shift_right", "to_config",
]  # fmt: skip
