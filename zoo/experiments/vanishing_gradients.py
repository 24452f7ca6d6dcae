"""Are deep networks trainable? The gradient of a deep sigmoid MLP vanishes
toward its input.

Backpropagation multiplies dE/dy by σ'(z) ≤ 1/4 and by Wᵀ at every layer, so
with weights that keep the forward signal's scale (Glorot) the gradient
reaching the first of L layers is about (1/4)^L of the last one's
(d2l.ai §5.4: 0.25¹⁰ ≈ 1e-6). Three ``deep_mlp`` nets of ``hidden_layers``
equal layers are trained on the same data:

    sigmoid            Glorot-uniform kernels (Keras' default)
    sigmoid + BN       batch norm before each sigmoid: its backward divides
                       by the batch's σ_B, undoing the shrinkage
    ReLU + He          relu' = 1 on the active half, He-normal kernels (2/fan_in)

``GradientStatistics`` (``custom_layers.inspect``) records ‖dE/dW‖ of every
layer at every step; the table gives its median over the first
``start_steps`` steps per layer, and the ratio of the first hidden layer's
to the last hidden layer's, and the test accuracy after training.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from zoo.experiments import common
from zoo.experiments.registry import register_experiment

NETS = {
    "sigmoid": dict(activation="sigmoid", batch_norm=False, kernel_initializer="glorot_uniform"),
    "sigmoid + BN": dict(activation="sigmoid", batch_norm=True, kernel_initializer="glorot_uniform"),
    "ReLU + He": dict(activation="relu", batch_norm=False, kernel_initializer="he_normal"),
}


@register_experiment(
    "vanishing-gradients",
    claim="A deep sigmoid MLP's gradient vanishes toward the input; batch norm or ReLU + He "
          "initialisation keep it",
    dataset="mnist_5k",
    quick=dict(hidden_layers=10, width=64, epochs=1, batch_size=100, learning_rate=0.01,
               start_steps=10),
    full=dict(hidden_layers=10, width=100, epochs=10, batch_size=100, learning_rate=0.01,
              start_steps=10),
)
def vanishing_gradients(context, *, hidden_layers, width, epochs, batch_size, learning_rate,
                        start_steps):
    from custom_layers.inspect import GradientStatistics

    train = context.arrays("train")
    x_test, y_test = context.arrays("test")
    layer_names = [f"dense_{index}" for index in range(1, hidden_layers + 1)]
    runs, table = {}, []
    for label, net in NETS.items():
        model = common.build("deep_mlp", context, hidden_units=(width,) * hidden_layers, **net)
        statistics_callback = GradientStatistics(every=1, first_steps=start_steps)
        common.fit(model, train, epochs=epochs, batch_size=batch_size, optimizer="sgd",
                   learning_rate=learning_rate, callbacks=[statistics_callback],
                   seed=context.seed)
        norms = {name: statistics.median(
                     row["weight_gradient_norm"] for row in statistics_callback.rows
                     if row["layer"] == name)
                 for name in layer_names}
        first, last = norms[layer_names[0]], norms[layer_names[-1]]
        accuracy = common.evaluate(model, x_test, y_test)["accuracy"]
        runs[label] = {**net, "gradient_norms": [norms[name] for name in layer_names],
                       "test_accuracy": accuracy}
        table.append({"net": label, "first_layer_gradient": first, "last_layer_gradient": last,
                      "first_over_last": first / last,
                      "orders_of_magnitude": math.log10(last / first),
                      "test_accuracy": accuracy})
    _plot(runs, hidden_layers, width, context)
    return {"hidden_layers": hidden_layers, "width": width, "start_steps": start_steps,
            "sigmoid_bound": 0.25 ** hidden_layers, "runs": runs, "table": table}


def _plot(runs, hidden_layers, width, context) -> None:
    plt = common.pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.5))
    layers = np.arange(1, hidden_layers + 1)
    for label, run in runs.items():
        axis.semilogy(layers, run["gradient_norms"], marker="o",
                      label=f"{label} (test accuracy {run['test_accuracy']:.2f})")
    axis.set(xlabel="hidden layer (1 = next to the input)",
             ylabel="‖dE/dW‖ at the start of training", xticks=layers,
             title=f"{hidden_layers} layers of {width} units on {context.dataset}")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3, which="both")
    common.save_figure(figure, context.plot_path)
