"""Tiny tokenizers, models and preference data built from configs, for tests, examples and docs.

Nothing is downloaded: the tokenizer is a word-level ``tokenizers`` model over
a small vocabulary, the models are Llama configs a few thousand parameters
large, and the data are synthetic with a preference a model can learn:

* :func:`toy_tokenizer` -- a ``PreTrainedTokenizerFast`` with pad/bos/eos/unk
  tokens and a chat template (system/user/assistant/tool roles,
  ``add_generation_prompt``, ``{% generation %}`` markers);
* :func:`toy_causal_lm`, :func:`toy_sequence_classifier` -- randomly
  initialised ``LlamaForCausalLM`` / ``LlamaForSequenceClassification`` sized
  to the tokenizer, seeded without touching the global RNG;
* :func:`toy_preference_dataset` -- a ``datasets.Dataset`` of prompt/chosen/rejected
  rows (or k-wise rows) where the preferred response holds more copies of a
  marker word (``kind="marker"``) or wins a rock-paper-scissors cycle
  (``kind="cyclic"``, which no scalar reward can represent).

Needs the ``train`` extra (``transformers``, ``tokenizers``, ``datasets``).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable
from typing import Any

import torch

__all__ = [
    "CHAT_TEMPLATE",
    "MARKER",
    "TOY_WORDS",
    "toy_causal_lm",
    "toy_preference_dataset",
    "toy_sequence_classifier",
    "toy_tokenizer",
]

#: The word that makes a response better in ``toy_preference_dataset(kind="marker")``.
MARKER = "good"

_FILLER = (
    "the a an and or but so it is was are be this that these those very quite some many few one two three "
    "cat dog bird fish tree river sky sun moon star road house book song game city music light water stone "
    "red blue green small big old new fast slow warm cold happy calm bright dark "
    "runs jumps sings reads walks flies swims shines falls grows plays sleeps thinks"
).split()
_TOPICS = "cats dogs birds rivers trees songs games cities music stars".split()
_PROMPT_WORDS = "please tell me about describe write something short on explain what why how you think of".split()
_CATEGORY_NAMES = ("chat", "code", "math", "safety", "story")
_RPS = ("rock", "paper", "scissors")
_CHAT = "hello hi yes no not bad okay thanks sorry i we they he she".split()
_PUNCT = list(".,?!:;'\"-()")

#: The default vocabulary (besides special tokens): every word the toy datasets use, plus punctuation.
TOY_WORDS: tuple[str, ...] = tuple(
    dict.fromkeys([MARKER, *_FILLER, *_TOPICS, *_PROMPT_WORDS, *_CATEGORY_NAMES, *_RPS, *_CHAT, *_PUNCT, *"0123456789"])
)

_SPECIAL = ("<pad>", "<s>", "</s>", "<unk>")
_ROLES = ("system", "user", "assistant", "tool")

#: The toy chat template: ``<s><|user|> text<|assistant|> reply</s>``; the assistant content and
#: its end-of-sequence token sit inside ``{% generation %}`` so ``return_assistant_tokens_mask`` works.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant', 'tool'] %}"
    "{{ raise_exception('toy chat template: unknown role ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>' }} "
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] }}{{ eos_token }}{% endgeneration %}"
    "{% else %}{{ message['content'] }}{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)

# The same split the tokenizer's Whitespace pre-tokenizer makes: runs of word characters, runs of punctuation.
_PIECES = re.compile(r"\w+|[^\w\s]+")


def toy_tokenizer(words: Iterable[str] | None = None) -> Any:
    """A word-level ``transformers.PreTrainedTokenizerFast`` with a chat template, built offline.

    Text is split on whitespace and punctuation (the ``tokenizers`` Whitespace
    pre-tokenizer); each piece is one token, or ``<unk>`` when it is not in the
    vocabulary. Plain text gets ``<s>`` in front (as Llama tokenizers do); the
    chat template writes ``<s>`` itself and ends every assistant turn with
    ``</s>``. Padding is ``<pad>`` (id 0), on the right. Decoding joins tokens
    with spaces and removes the space before punctuation, so simple
    lower-case sentences round-trip exactly.

    Parameters
    ----------
    words : iterable of str, optional
        Texts whose pieces make up the vocabulary (each text is split like the
        tokenizer splits it, so whole sentences may be given). Default:
        :data:`TOY_WORDS`, which covers every toy dataset.

    Returns
    -------
    transformers.PreTrainedTokenizerFast

    Examples
    --------
    >>> tok = toy_tokenizer()
    >>> ids = tok("the cat is good .")["input_ids"]
    >>> tok.convert_ids_to_tokens(ids)
    ['<s>', 'the', 'cat', 'is', 'good', '.']
    >>> tok.decode(ids, skip_special_tokens=True)
    'the cat is good.'
    >>> chat = [{"role": "user", "content": "hello"}]
    >>> tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    '<s><|user|> hello\\n<|assistant|> '
    >>> toy_tokenizer(["Hello there!"]).tokenize("Hello there!")
    ['Hello', 'there', '!']
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if words is None:
        words = TOY_WORDS
    elif isinstance(words, str):
        raise TypeError("words must be an iterable of strings (e.g. a list of sentences), not a single string.")
    pieces: list[str] = []
    for i, text in enumerate(words):
        if not isinstance(text, str):
            raise TypeError(f"words[{i}] must be a str, got {type(text).__name__}.")
        pieces.extend(_PIECES.findall(text))
    role_tokens = [f"<|{role}|>" for role in _ROLES]
    reserved = set(_SPECIAL) | set(role_tokens)
    vocab = {token: i for i, token in enumerate([*_SPECIAL, *role_tokens])}
    for piece in dict.fromkeys(pieces):
        if piece not in reserved:
            vocab[piece] = len(vocab)

    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", vocab["<s>"])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=True,
        padding_side="right",
        model_max_length=4096,
    )
    # Role markers are special: never split, dropped by decode(skip_special_tokens=True).
    tokenizer.add_special_tokens({"additional_special_tokens": role_tokens})
    return tokenizer


def _llama_config(tokenizer: Any, hidden_size: int, layers: int, heads: int, **extra: Any) -> Any:
    from transformers import LlamaConfig

    for name, value in (("hidden_size", hidden_size), ("layers", layers), ("heads", heads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
    if hidden_size % heads or (hidden_size // heads) % 2:
        raise ValueError(
            f"hidden_size={hidden_size} must split into heads={heads} heads of even size (rotary embeddings)."
        )
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=1,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
        **extra,
    )


def _build(cls: Any, config: Any, seed: int, dtype: torch.dtype) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config)
    model = model.to(dtype)
    model.eval()
    return model


def toy_causal_lm(
    tokenizer: Any,
    hidden_size: int = 16,
    layers: int = 2,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    *,
    heads: int = 2,
) -> Any:
    """A randomly initialised ``transformers.LlamaForCausalLM`` sized to ``tokenizer``.

    The vocabulary size and pad/bos/eos ids come from the tokenizer (the
    generation config gets them too, so ``generate`` pads and stops right);
    the weights depend only on ``seed`` (torch's global RNG is left as it
    was). Input and output embeddings are not tied. Returned in eval mode.

    Parameters
    ----------
    tokenizer : transformers tokenizer
        E.g. :func:`toy_tokenizer`.
    hidden_size, layers, heads : int
        Width (``intermediate_size`` is twice it), depth and attention heads
        (one key/value head).
    seed : int
    dtype : torch.dtype
        Parameter dtype, e.g. ``torch.float64`` for exact comparisons.

    Examples
    --------
    >>> import torch
    >>> tok = toy_tokenizer()
    >>> model = toy_causal_lm(tok, seed=0)
    >>> ids = torch.tensor([tok("the cat")["input_ids"]])
    >>> tuple(model(ids).logits.shape) == (1, 3, len(tok))
    True
    >>> a, b = toy_causal_lm(tok, seed=1), toy_causal_lm(tok, seed=1)
    >>> bool(torch.equal(a.lm_head.weight, b.lm_head.weight))
    True
    """
    from transformers import LlamaForCausalLM

    model = _build(LlamaForCausalLM, _llama_config(tokenizer, hidden_size, layers, heads), seed, dtype)
    gen = model.generation_config
    gen.pad_token_id, gen.bos_token_id, gen.eos_token_id = (
        tokenizer.pad_token_id,
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
    )
    return model


def toy_sequence_classifier(
    tokenizer: Any,
    num_labels: int = 1,
    hidden_size: int = 16,
    layers: int = 2,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    *,
    heads: int = 2,
) -> Any:
    """A randomly initialised ``transformers.LlamaForSequenceClassification`` (a reward model).

    ``config.pad_token_id`` is the tokenizer's, so the score is read at the
    last non-padding token of right-padded rows. ``num_labels=1`` gives one
    scalar reward per sequence.

    Examples
    --------
    >>> import torch
    >>> tok = toy_tokenizer()
    >>> rm = toy_sequence_classifier(tok)
    >>> batch = tok(["the cat is good", "the dog"], padding=True, return_tensors="pt")
    >>> tuple(rm(**batch).logits.shape)
    (2, 1)
    >>> alone = rm(**tok(["the dog"], return_tensors="pt")).logits
    >>> bool(torch.allclose(rm(**batch).logits[1], alone[0], atol=1e-6))   # padding does not change it
    True
    """
    from transformers import LlamaForSequenceClassification

    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
        raise ValueError(f"num_labels must be a positive int, got {num_labels!r}.")
    config = _llama_config(tokenizer, hidden_size, layers, heads, num_labels=num_labels)
    return _build(LlamaForSequenceClassification, config, seed, dtype)


# ---------------------------------------------------------------- data


def _sentence(rng: random.Random, n_words: int, markers: int) -> str:
    words = [rng.choice(_FILLER) for _ in range(n_words)]
    for _ in range(markers):
        words.insert(rng.randrange(len(words) + 1), MARKER)
    return " ".join(words) + " ."


def _prompt(rng: random.Random, category: str | None) -> str:
    head = f"{category} :" if category is not None else ""
    body = " ".join(rng.choice(_PROMPT_WORDS) for _ in range(rng.randint(2, 4)))
    return f"{head} {body} {rng.choice(_TOPICS)} ?".strip()


def toy_preference_dataset(
    n: int = 64,
    seed: int = 0,
    *,
    kind: str = "marker",
    conversational: bool = False,
    k: int | None = None,
    ties: float = 0.0,
    margins: bool = False,
    strengths: bool = False,
    soft_targets: bool = False,
    categories: int | Iterable[str] | None = None,
    words: tuple[int, int] = (3, 8),
) -> Any:
    """A synthetic preference ``datasets.Dataset`` with a preference a model can learn.

    ``kind="marker"``: each response holds some copies of the word
    :data:`MARKER` (``"good"``) among filler words; the response with more
    copies is preferred. Non-tied pairs have 1 or 2 markers in the chosen
    response and 0 in the rejected one, so the marker appears only in chosen
    responses; tied pairs (``is_tie``) have the same count on both sides.

    ``kind="cyclic"``: each response is ``"rock"``, ``"paper"`` or
    ``"scissors"`` (after a shared filler sentence); paper beats rock, rock
    beats scissors, scissors beat paper. No scalar score reproduces this, a
    general preference model can.

    Parameters
    ----------
    n : int
        Number of rows.
    seed : int
    kind : {"marker", "cyclic"}
    conversational : bool
        Rows in TRL's conversational format: ``prompt`` a one-message user
        turn, each response a one-message assistant turn. Otherwise strings,
        each response starting with a space (they are concatenated to the
        prompt, as in TRL).
    k : int, optional
        K-wise rows instead of pairs: ``prompt``, ``responses`` (k of them)
        and ``ranks`` (1 = best; equal marker counts share a rank), plus
        ``scores`` (the marker counts). Only for ``kind="marker"``.
    ties : float
        Fraction of pairs that are ties (an ``is_tie`` column is added when
        ``ties > 0``). Not for ``kind="cyclic"``.
    margins, strengths, soft_targets : bool
        Add a ``margin`` column (marker-count difference), a ``strength``
        column (the same difference, at least 1; 1 for ties), and a ``target``
        column ``sigmoid(difference)`` (0.5 for ties).
    categories : int or iterable of str, optional
        Add a ``category`` column (the first ``categories`` of chat, code,
        math, safety, story, or the given names); the prompt starts with it.
    words : (int, int)
        Inclusive range of filler words per response.

    Examples
    --------
    >>> ds = toy_preference_dataset(4, seed=0, margins=True)
    >>> ds.column_names
    ['prompt', 'chosen', 'rejected', 'margin']
    >>> all(MARKER in c.split() and MARKER not in r.split() for c, r in zip(ds["chosen"], ds["rejected"]))
    True
    >>> toy_preference_dataset(2, k=3).column_names
    ['prompt', 'responses', 'ranks', 'scores']
    >>> toy_preference_dataset(1, conversational=True)[0]["chosen"][0]["role"]
    'assistant'
    """
    from datasets import Dataset

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}.")
    if kind not in ("marker", "cyclic"):
        raise ValueError(f"kind must be 'marker' or 'cyclic', got {kind!r}.")
    if not 0.0 <= ties <= 1.0:
        raise ValueError(f"ties must be a fraction in [0, 1], got {ties!r}.")
    if kind == "cyclic" and (ties or k is not None or margins or strengths or soft_targets):
        raise ValueError("kind='cyclic' makes plain pairs only (no ties, k, margins, strengths or soft_targets).")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 2):
        raise ValueError(f"k must be an int >= 2 (responses per prompt), got {k!r}.")
    if k is not None and (ties or margins or strengths or soft_targets):
        raise ValueError("k-wise rows carry ranks and scores; ties, margins, strengths and soft_targets are for pairs.")
    lo, hi = words
    if not 1 <= lo <= hi:
        raise ValueError(f"words must be a range (lo, hi) with 1 <= lo <= hi, got {words!r}.")
    names: list[str] | None
    if categories is None:
        names = None
    elif isinstance(categories, int):
        if not 1 <= categories <= len(_CATEGORY_NAMES):
            raise ValueError(f"categories must be between 1 and {len(_CATEGORY_NAMES)}, got {categories}.")
        names = list(_CATEGORY_NAMES[:categories])
    else:
        names = [str(c) for c in categories]
        if not names:
            raise ValueError("categories is empty.")

    rng = random.Random(seed)
    rows: dict[str, list[Any]] = {}

    def add(name: str, value: Any) -> None:
        rows.setdefault(name, []).append(value)

    def as_turn(text: str, role: str) -> Any:
        if conversational:
            return [{"role": role, "content": text}]
        # Plain strings are concatenated as prompt + response (TRL's convention), so responses start with a space.
        return text if role == "user" else " " + text

    for _ in range(n):
        category = rng.choice(names) if names is not None else None
        prompt = _prompt(rng, category)
        add("prompt", as_turn(prompt, "user"))
        if k is not None:
            counts = [rng.randint(0, 3) for _ in range(k)]
            responses = [_sentence(rng, rng.randint(lo, hi), c) for c in counts]
            add("responses", [as_turn(r, "assistant") for r in responses])
            add("ranks", [1 + sum(other > c for other in counts) for c in counts])
            add("scores", [float(c) for c in counts])
        elif kind == "cyclic":
            stem = " ".join(rng.choice(_FILLER) for _ in range(rng.randint(lo, hi)))
            loser = rng.randrange(3)
            winner = (loser + 1) % 3  # paper > rock, scissors > paper, rock > scissors
            add("chosen", as_turn(f"{stem} {_RPS[winner]} .", "assistant"))
            add("rejected", as_turn(f"{stem} {_RPS[loser]} .", "assistant"))
        else:
            tie = rng.random() < ties
            if tie:
                c_count = r_count = rng.randint(0, 2)
            else:
                c_count, r_count = rng.randint(1, 2), 0
            add("chosen", as_turn(_sentence(rng, rng.randint(lo, hi), c_count), "assistant"))
            add("rejected", as_turn(_sentence(rng, rng.randint(lo, hi), r_count), "assistant"))
            diff = c_count - r_count
            if ties > 0:
                add("is_tie", tie)
            if margins:
                add("margin", float(diff))
            if strengths:
                add("strength", float(max(diff, 1)))
            if soft_targets:
                add("target", 1.0 / (1.0 + math.exp(-diff)))
        if category is not None:
            add("category", category)
    return Dataset.from_dict(rows)
