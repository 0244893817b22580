"""`indexer`: multilingual document collections searchable by several models.

A collection is a directory with a database (SQLite by default, any SQLAlchemy URL) and one
vector store per model over the same chunks (FAISS files in the directory, or Milvus). See
`indexer.collection` for the layout, `indexer.writer` for the crash-safe write protocol, and
README "Indexer" for the CLI.

```python
from indexer import Collection, Document
with Collection.create("/tmp/notes", ["pkg:multilingual-e5-small"]) as col:
    col.add([Document(id="1", lang="de", text="Die Katze schläft."), {"id": "2", "lang": "en", "text": "Hi"}])
with Collection.open("data/collections/xquad", read_only=True) as col:
    for hit in col.search("¿Quién ganó el Super Bowl 50?", k=5, langs=["en", "de"]):
        print(hit.score, hit.lang, hit.doc_id, hit.snippet[:80])
```
"""

from distill.documents import Document
from indexer.collection import Collection
from indexer.config import CollectionSettings, IndexKind, IndexSpec, OnError
from indexer.errors import (
    CollectionExistsError,
    CollectionLockedError,
    CollectionNotFoundError,
    IndexCorruptError,
    IndexerError,
    InputError,
    ModelMismatchError,
    ReadOnlyError,
    UnknownModelError,
)
from indexer.results import AddSummary, DeleteSummary, Hit, VerifyReport
from indexer.stores import StoreKind

__all__ = [
    "AddSummary",
    "Collection",
    "CollectionExistsError",
    "CollectionLockedError",
    "CollectionNotFoundError",
    "CollectionSettings",
    "DeleteSummary",
    "Document",
    "Hit",
    "IndexCorruptError",
    "IndexKind",
    "IndexSpec",
    "IndexerError",
    "InputError",
    "ModelMismatchError",
    "OnError",
    "ReadOnlyError",
    "StoreKind",
    "UnknownModelError",
    "VerifyReport",
]
