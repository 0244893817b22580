"""Helpers the test modules share: tiny distillation setups, indexer fixtures, the Milvus server."""
