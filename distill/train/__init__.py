"""Training: the four distillation stages (`run`), the shared loop (`loop`), data pairs and DDP helpers."""
