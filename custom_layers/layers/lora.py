"""LoRA on a layer's kernel, shared by ``Dense`` and the convolutions, with
Keras' API: ``lora_rank``/``lora_alpha`` arguments, ``enable_lora()``, the
``kernel`` property, and saving with the adaptation merged into the kernel."""

from __future__ import annotations

import keras

from custom_layers import ops
from custom_layers._compat import unlocked_state
from custom_layers.arguments import check_int


class LoRAKernel:
    """Mixin for a layer whose weight ``kernel`` (created as ``_kernel``) can be
    adapted as W' = W + (α/r)·A·B (:mod:`custom_layers.ops.lora`): W frozen,
    A (the kernel's fan-in × r, initialised He-uniform) and B (r × outputs,
    zeros) trained. ``kernel`` is W' while LoRA is on. Saving stores W' and
    loading puts it back into W with A and B zeroed, as Keras does."""

    def _init_lora(self, lora_rank, lora_alpha) -> None:
        self.lora_rank = None if lora_rank is None else check_int(lora_rank, "lora_rank", minimum=1)
        self.lora_alpha = lora_alpha if lora_alpha is not None else self.lora_rank
        self.lora_enabled = False

    def _build_lora(self, keep_alpha: bool = True) -> None:
        """Called at the end of ``build``: a layer configured with a rank starts
        adapted. ``keep_alpha=False`` resets α to r, as ``keras.layers.Dense``
        does when it builds (its convolutions keep ``lora_alpha``)."""
        if self.lora_rank:
            self.enable_lora(self.lora_rank, lora_alpha=self.lora_alpha if keep_alpha else None)

    @property
    def kernel(self):
        if not self.lora_enabled:
            return self._kernel
        return ops.lora_kernel(self._kernel, self.lora_kernel_a, self.lora_kernel_b,
                               self.lora_alpha / self.lora_rank)

    def enable_lora(self, rank, lora_alpha=None, a_initializer="he_uniform",
                    b_initializer="zeros") -> None:
        """Freezes the kernel and adds the trainable float32 factors A and B."""
        if self.kernel_constraint:
            raise ValueError("Lora is incompatible with kernel constraints. In order to enable "
                             "lora on this layer, remove the `kernel_constraint` argument.")
        if not self.built:
            raise ValueError("Cannot enable lora on a layer that isn't yet built.")
        if self.lora_enabled:
            raise ValueError("lora is already enabled. This can only be done once per layer.")
        rank = check_int(rank, "rank", minimum=1)
        with unlocked_state(self):
            self.lora_kernel_a = self.add_weight(
                name="lora_kernel_a", shape=tuple(self._kernel.shape[:-1]) + (rank,),
                initializer=keras.initializers.get(a_initializer), dtype="float32",
                regularizer=self.kernel_regularizer)
            self.lora_kernel_b = self.add_weight(
                name="lora_kernel_b", shape=(rank, self._kernel.shape[-1]),
                initializer=keras.initializers.get(b_initializer), dtype="float32",
                regularizer=self.kernel_regularizer)
        self._kernel.trainable = False
        self.lora_enabled = True
        self.lora_rank = rank
        self.lora_alpha = lora_alpha if lora_alpha is not None else rank

    def save_own_variables(self, store):
        if not self.lora_enabled:
            return super().save_own_variables(store)
        for index, value in enumerate([self.kernel, *([self.bias] if self.use_bias else [])]):
            store[str(index)] = keras.ops.convert_to_numpy(value)

    def load_own_variables(self, store):
        if not self.lora_enabled:
            return super().load_own_variables(store)
        for index, variable in enumerate([self._kernel, *([self.bias] if self.use_bias else [])]):
            variable.assign(store[str(index)])
        self.lora_kernel_a.assign(keras.ops.zeros(self.lora_kernel_a.shape))
        self.lora_kernel_b.assign(keras.ops.zeros(self.lora_kernel_b.shape))

    def quantize(self, mode=None, *args, **kwargs):
        """Refused: the hand-written backward passes are for float weights."""
        raise NotImplementedError(
            f"custom_layers.{type(self).__name__} does not support quantization "
            f"(quantize({mode!r})): its backward passes are written for float weights; "
            "quantize a model of keras.layers instead.")

    def _lora_config(self) -> dict:
        return {"lora_rank": self.lora_rank, "lora_alpha": self.lora_alpha} if self.lora_rank else {}
