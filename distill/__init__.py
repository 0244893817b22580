"""xlsearch distillation: models, data readers, the four-stage distillation and evaluation."""

__version__ = "0.1.0"
