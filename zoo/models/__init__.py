"""Model families (one module each) and the registry; importing the
families registers their models."""

from zoo.models.classic import lenet5, resnet, resnet20
from zoo.models.cnn import deep_cnn
from zoo.models.cnn1d import cnn1d
from zoo.models.mlp import deep_mlp
from zoo.models.registry import (
    create_model,
    datasets_for,
    default_dataset,
    list_models,
    model_arguments,
    register_model,
    training_recipe,
)

__all__ = ["cnn1d", "create_model", "datasets_for", "deep_cnn", "deep_mlp", "default_dataset", "lenet5",
           "list_models", "model_arguments", "register_model", "resnet", "resnet20",
           "training_recipe"]
