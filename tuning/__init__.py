"""Keras Tuner search over the weight-decay λ and the dropout rate of zoo models."""
