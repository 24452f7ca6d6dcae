"""deepzoo: deep MLP and CNN models built from layers with hand-written gradients."""

__version__ = "0.1.0"
