"""finetec: skeleton-based fine-grained action recognition under temporal corruption."""

__version__ = "0.1.0"
