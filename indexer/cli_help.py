"""The commands of `indexer` and their help texts (kept apart from the parser and the handlers)."""

from __future__ import annotations

COMMANDS: dict[str, tuple[str, str]] = {
    "create": (
        "create a collection with one or more models",
        """\
        Create a collection in DIR (a new or empty directory) that indexes every document with
        each --model. Models are loaded once to record their dimension and prompts. A model
        that ships its own Python code is refused unless --trust-remote-code (xlsearch students
        need no flag: their code is the installed one).

        Index types: flat (exact; the default, right below ~100k chunks), hnsw (graph; M and
        efSearch configurable; cannot delete, so deletions are tombstones until a rebuild), ivfpq
        (compressed; trained on the collection's vectors once there are enough, a flat index
        stands in until then, and retrained whenever the collection doubles its lists), auto (flat, switching to hnsw at 100k chunks) or any FAISS factory
        string such as "IVF256,SQ8". The database is SQLite in DIR unless --db-url names another
        (e.g. postgresql+psycopg://user@host/db, an empty database).

        Backends (--backend): how each model runs, recorded in the collection and used for every
        later add and search: torch (fp32, the default), int8 (PyTorch dynamic int8), onnx or
        onnx-int8 (ONNX Runtime; the model is exported once and checked against torch, cosine
        >= 0.995 on check texts, or refused). `distill backends MODEL` compares them on your texts. Change it
        later with `indexer rebuild DIR --reembed --backend NAME`.

        Vector store (--vector-store): faiss (the default: one index file per model in DIR) or
        milvus (one Milvus collection per model; --milvus-uri is a Milvus Lite file, default
        DIR/milvus.db, or a server such as http://host:19530, with credentials from MILVUS_TOKEN
        or MILVUS_USER + MILVUS_PASSWORD; index types flat, hnsw, auto, and ivfpq on a server).
        Recorded in the collection: later commands need no flag.

        examples:
          indexer create data/collections/xquad --model pkg:multilingual-e5-small --model pkg:all-MiniLM-L6-v2
          indexer create /tmp/m --model pkg:multilingual-e5-small --vector-store milvus
          indexer create /tmp/m --model pkg:multilingual-e5-small --vector-store milvus --milvus-uri http://milvus:19530
          indexer create /tmp/c --model pkg:multilingual-e5-small --index-type hnsw --hnsw-m 32 --ef-search 64
          indexer create /tmp/c --model pkg:multilingual-e5-small --db-url postgresql+psycopg://me@localhost/xl
          indexer create /tmp/c --model pkg:multilingual-e5-small --model data/students/offline --backend onnx-int8
          indexer create /tmp/c --model pkg:multilingual-e5-small --model data/students/offline \
            --backend pkg:multilingual-e5-small=int8 --backend data/students/offline=onnx-int8
        """,
    ),
    "add": (
        "add documents from JSONL/CSV/TSV/TXT files (changed ones are updated)",
        """\
        Add the documents of each FILE (`-`: JSONL from standard input): .jsonl (one object per line with id, lang, title?, text;
        other fields become metadata), .csv (header with the same columns), .tsv (header, no
        quoting) or .txt (one document per file; id = file name without .txt, language from NAME.xx.txt or
        --lang). A document already present with the same content is left alone; a changed one
        is replaced. With --on-error fail (default) a file with any bad record is rejected before
        anything from it is written; with --on-error skip bad records go to a rejects file
        (DIR/rejects/ unless --rejects) and the rest is indexed.

        examples:
          indexer add data/collections/xquad ../shared/data/corpus/xquad_paragraphs.jsonl
          indexer add /tmp/c notes.csv more.jsonl --on-error skip --rejects /tmp/rejects.jsonl
          indexer add /tmp/c letter.txt --lang de
        """,
    ),
    "update": (
        "update documents that are already in the collection",
        """\
        Like `add`, but every id must already be in the collection (an unknown id is bad input):
        use it to apply corrections without adding new documents by mistake.

        example:
          indexer update data/collections/xquad fixed_paragraphs.jsonl
        """,
    ),
    "delete": (
        "delete documents by id",
        """\
        Delete documents (by their id in the input files) with all their chunks and vectors.
        Ids not in the collection are reported.

        examples:
          indexer delete data/collections/xquad --id xquad.000.en xquad.000.de
          indexer delete data/collections/xquad --ids-file obsolete_ids.txt
        """,
    ),
    "search": (
        "search the collection",
        """\
        Search with one of the collection's models (default: the first). Each document is
        listed once, with its best chunk as the snippet. --lang keeps only documents in those
        languages (the filter runs inside FAISS, so it works with every index type and never
        returns fewer hits because other languages crowd the top).

        examples:
          indexer search data/collections/xquad "¿Quién ganó el Super Bowl 50?" --lang en,de,zh
          indexer search data/collections/xquad "Warsaw population" --model pkg:all-MiniLM-L6-v2 --k 5 --json
        """,
    ),
    "info": (
        "documents per language, chunks, and index type and size per model",
        """\
        Show what the collection holds: documents per language, chunks, and for every model its
        index type, number of vectors, tombstones, file sizes and last update.

        example:
          indexer info data/collections/xquad --json
        """,
    ),
    "verify": (
        "check that database, indexes and stored vectors agree (exit 1 if not)",
        """\
        Check, without changing anything, that every chunk is in every model's index and
        nothing else is, that index files match the size and checksum recorded at commit, and
        that every chunk has a stored vector. Exits 1 when there is any problem. --repair opens
        the collection for writing first, which reconciles it (pending chunks embedded, orphan
        vectors removed, corrupt indexes rebuilt from the stored vectors, the chunks of corrupt
        vector segments re-embedded, a lost collection.json rewritten from the database).

        examples:
          indexer verify data/collections/xquad
          indexer verify data/collections/xquad --repair --json
        """,
    ),
    "rebuild": (
        "rebuild indexes from the stored vectors, optionally switching type",
        """\
        Rebuild each model's index (or only --model's) from the stored float16 vectors, without
        re-encoding: reclaims HNSW tombstones, retrains IVF-PQ for the current size, or switches
        the index type. --reembed encodes every chunk again (after a model changed); with
        --backend it switches how the models (or --model's) run and re-encodes with it.

        examples:
          indexer rebuild data/collections/xquad --index-type hnsw --hnsw-m 32
          indexer rebuild data/collections/xquad --index-type ivfpq --nlist 64 --model pkg:all-MiniLM-L6-v2
          indexer rebuild data/collections/xquad --index-type "IVF64,SQ8"
          indexer rebuild data/collections/xquad --reembed --backend onnx-int8 --model pkg:multilingual-e5-small
        """,
    ),
    "export": (
        "write every document as JSONL",
        """\
        Write every document as JSONL (id, lang, title, text and its metadata fields), the
        format `indexer add` reads, to --out or standard output.

        example:
          indexer export data/collections/xquad --out /tmp/xquad_backup.jsonl
        """,
    ),
}
