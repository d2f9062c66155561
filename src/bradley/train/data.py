"""Preference data for training: rows in the formats people have -> token ids -> batches -> a loss's inputs.

Three steps, each usable alone:

1. :func:`read_preferences` checks and normalises rows (a ``datasets.Dataset``,
   a list of dicts, a dict of lists or a pandas DataFrame) into one of three
   formats, told apart by their columns:

   * **pairs** -- ``chosen``, ``rejected`` and ``prompt``. Strings, or chat
     messages (lists of ``{"role", "content"}``). Without a ``prompt``
     column the prompt is implicit: the longest common prefix of chosen and
     rejected (messages; or characters for strings, as TRL does), and what
     follows is the two responses, which for chat data must be assistant
     turns. Optional per-pair columns: ``is_tie`` (or ``tie``), ``margin``,
     ``strength``, ``target`` (soft P(chosen beats rejected)), ``category``.
   * **lists** (k-wise) -- ``prompt``, ``responses`` (a list) and ``ranks``
     (1 = best, ties share a rank) and/or ``scores`` (higher = better; ranks
     are derived from them when absent). Optional ``category``.
   * **unpaired** (KTO) -- ``prompt``, ``completion``, ``label`` (True =
     desirable). Optional ``category``.

   TRL-format datasets (standard or conversational, explicit or implicit
   prompt, preference or unpaired preference) are read unchanged.

2. :func:`tokenize_preferences` renders chat messages with the tokenizer's
   chat template (plain strings as ``prompt + response`` plus EOS), splits
   prompt from response tokens, truncates, and returns the tokenised dataset
   with a :class:`TokenizationReport` of everything it cut or dropped (also
   logged: a warning when anything was cut).

3. :class:`PairCollator` (chosen and rejected stacked in one batch,
   ``[chosen; rejected]``), :class:`ListCollator` (K responses per prompt) and
   :class:`UnpairedCollator` pad on the right and are plain callables, usable
   as a ``transformers.Trainer`` ``data_collator``. :func:`preference_batch`
   and :func:`list_preference_batch` turn per-token log-probs of one forward
   pass into a :class:`bradley.nn.PreferenceBatch`, so any loss can be called
   by name.

Truncation, said once: the prompt keeps its **end** (the turn being answered
and the generation prompt; ``prompt_truncation="keep_start"`` keeps its start
instead) and is cut first to ``max_prompt_length``; each response keeps its
**start** (what the policy generates first given the prompt) and is cut to
fit ``max_length``. A prompt is also cut so that at least one response token
fits in ``max_length``. ``drop_overlong=True`` drops over-long rows instead.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from bradley.nn.batch import BATCH_FIELDS, PreferenceBatch
from bradley.nn.logprobs import SequenceLogProbs

__all__ = [
    "FORMATS",
    "ListCollator",
    "PairCollator",
    "TokenizationReport",
    "UnpairedCollator",
    "list_preference_batch",
    "loss_fields",
    "preference_batch",
    "read_preferences",
    "split_pairs",
    "tokenize_preferences",
]

logger = logging.getLogger(__name__)

#: The formats :func:`read_preferences` knows, by the columns that identify them.
FORMATS = {
    "pair": ("chosen", "rejected"),
    "list": ("prompt", "responses"),
    "unpaired": ("prompt", "completion", "label"),
}

_PAIR_NUMBERS = ("margin", "strength", "target")
_ASSISTANT_ROLES = ("assistant", "tool")


# ---------------------------------------------------------------- reading


def _as_dataset(data: Any) -> Any:
    import datasets

    if isinstance(data, datasets.DatasetDict):
        raise TypeError(f"got a DatasetDict with splits {list(data)}; pass one split, e.g. data[{next(iter(data))!r}].")
    if isinstance(data, datasets.IterableDataset):
        raise TypeError("an IterableDataset cannot be read here; load the data as a datasets.Dataset.")
    if isinstance(data, datasets.Dataset):
        return data
    if isinstance(data, Mapping):
        return datasets.Dataset.from_dict(dict(data))
    if isinstance(data, list):
        if not all(isinstance(row, Mapping) for row in data):
            raise TypeError("a list of rows must hold dicts (one per row).")
        return datasets.Dataset.from_list([dict(row) for row in data])
    if type(data).__name__ == "DataFrame" and hasattr(data, "to_dict"):
        return datasets.Dataset.from_pandas(data, preserve_index=False)
    raise TypeError(
        f"preference data must be a datasets.Dataset, a list of row dicts, a dict of columns or a pandas "
        f"DataFrame; got {type(data).__name__}."
    )


def _detect_format(columns: Sequence[str]) -> str:
    cols = set(columns)
    if {"chosen", "rejected"} <= cols:
        return "pair"
    if "responses" in cols:
        if "prompt" not in cols or not ({"ranks", "scores"} & cols):
            raise ValueError(
                f"k-wise rows need columns prompt, responses and ranks (1 = best) or scores; got {sorted(cols)}."
            )
        return "list"
    if {"completion", "label"} <= cols:
        if "prompt" not in cols:
            raise ValueError(f"unpaired rows need columns prompt, completion and label; got {sorted(cols)}.")
        return "unpaired"
    raise ValueError(
        f"cannot tell the format of preference data with columns {sorted(cols)}; expected chosen + rejected "
        f"(+ prompt) for pairs, prompt + responses + ranks/scores for k-wise lists, or prompt + completion + "
        f"label for unpaired (KTO) rows."
    )


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0 and isinstance(value[0], Mapping) and "role" in value[0]


def _check_messages(value: Any, row: int, column: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"row {row}, column {column!r}: expected a non-empty list of chat messages, got {value!r}.")
    for j, message in enumerate(value):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str) or "content" not in message:
            raise ValueError(
                f"row {row}, column {column!r}, message {j}: expected a dict with a 'role' string and a "
                f"'content', got {message!r}."
            )
    return [dict(m) for m in value]


def _check_text(value: Any, row: int, column: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"row {row}, column {column!r}: expected a string, got {type(value).__name__} {value!r}.")
    return value


def _check_response_turns(messages: list[dict[str, Any]], row: int, column: str) -> None:
    if not messages:
        raise ValueError(f"row {row}, column {column!r}: the response has no messages after the prompt.")
    roles = [m["role"] for m in messages]
    if roles[0] != "assistant" or any(r not in _ASSISTANT_ROLES for r in roles):
        raise ValueError(
            f"row {row}, column {column!r}: the response turns after the prompt have roles {roles}; a response "
            f"must be assistant turns (tool results allowed after the first). If chosen and rejected differ "
            f"before their last assistant turn, give an explicit prompt column."
        )


def _common_prefix(a: Sequence[Any], b: Sequence[Any]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):  # stop at the shorter
        if x != y:
            break
        n += 1
    return n


def _prompt_messages(prompt: Any, row: int) -> list[dict[str, Any]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return _check_messages(prompt, row, "prompt")


def _strip_repeated_prompt(prompt: list[dict[str, Any]], response: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Some datasets repeat the prompt turns inside chosen/rejected; a response cannot start with a user turn.
    n = len(prompt)
    if len(response) > n and response[:n] == prompt:
        return response[n:]
    return response


def _read_pair(row: dict[str, Any], idx: int) -> dict[str, Any]:
    chosen, rejected, prompt = row["chosen"], row["rejected"], row.get("prompt")
    if _is_messages(chosen) or _is_messages(rejected):
        chosen = _check_messages(chosen, idx, "chosen")
        rejected = _check_messages(rejected, idx, "rejected")
        implicit = prompt is None or (isinstance(prompt, str) and chosen[0]["role"] != "assistant")
        if implicit:
            # TRL's convention: a string prompt beside full conversations is informative only.
            n = _common_prefix(chosen, rejected)
            if n == 0:
                raise ValueError(
                    f"row {idx}: chosen and rejected share no leading messages, so there is no implicit prompt; "
                    f"give a prompt column or start both conversations with the same turns."
                )
            if n == len(chosen) and n == len(rejected):
                raise ValueError(f"row {idx}: chosen and rejected are the same conversation.")
            prompt_msgs, chosen, rejected = chosen[:n], chosen[n:], rejected[n:]
        else:
            prompt_msgs = _prompt_messages(prompt, idx)
            chosen = _strip_repeated_prompt(prompt_msgs, chosen)
            rejected = _strip_repeated_prompt(prompt_msgs, rejected)
        _check_response_turns(chosen, idx, "chosen")
        _check_response_turns(rejected, idx, "rejected")
        out: dict[str, Any] = {"prompt": prompt_msgs, "chosen": chosen, "rejected": rejected}
    else:
        chosen = _check_text(chosen, idx, "chosen")
        rejected = _check_text(rejected, idx, "rejected")
        if prompt is None:
            if chosen == rejected:
                raise ValueError(f"row {idx}: chosen and rejected are the same text, so there is no implicit prompt.")
            n = _common_prefix(chosen, rejected)
            if n > 0 and chosen[n - 1] == " ":
                n -= 1  # the separating space starts the responses, as in TRL
            prompt, chosen, rejected = chosen[:n], chosen[n:], rejected[n:]
        elif _is_messages(prompt):
            raise ValueError(
                f"row {idx}: prompt is chat messages but chosen/rejected are strings; give both as messages "
                f"or both as strings."
            )
        out = {"prompt": _check_text(prompt, idx, "prompt"), "chosen": chosen, "rejected": rejected}
    return out


def _number(value: Any, row: int, column: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"row {row}, column {column!r}: expected a finite number, got {value!r}.")
    return float(value)


def _flag(value: Any, row: int, column: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    raise ValueError(f"row {row}, column {column!r}: expected True/False (or 1/0), got {value!r}.")


def _read_pair_fields(row: dict[str, Any], idx: int, tie_column: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if tie_column is not None:
        out["is_tie"] = _flag(row[tie_column], idx, tie_column)
    for name in _PAIR_NUMBERS:
        if name in row:
            value = _number(row[name], idx, name)
            if name == "strength" and not value > 0:
                raise ValueError(f"row {idx}, column 'strength': a preference strength must be > 0, got {value}.")
            if name == "target" and not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"row {idx}, column 'target': a soft target is P(chosen beats rejected) in [0, 1], got {value}."
                )
            out[name] = value
    return out


def _read_category(row: dict[str, Any], idx: int) -> dict[str, Any]:
    if "category" not in row:
        return {}
    value = row["category"]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"row {idx}, column 'category': expected a string (or int) label, got {value!r}.")
    return {"category": str(value)}


def _read_response(value: Any, idx: int, column: str, conversational: bool) -> Any:
    if conversational:
        if isinstance(value, Mapping):
            value = [value]
        messages = _check_messages(value, idx, column)
        _check_response_turns(messages, idx, column)
        return messages
    return _check_text(value, idx, column)


def _read_list(row: dict[str, Any], idx: int) -> dict[str, Any]:
    responses = row["responses"]
    if not isinstance(responses, list) or len(responses) < 2:
        raise ValueError(f"row {idx}, column 'responses': expected a list of at least 2 responses, got {responses!r}.")
    k = len(responses)
    conversational = any(isinstance(r, (list, Mapping)) for r in responses)
    prompt = row["prompt"]
    if conversational:
        prompt = _prompt_messages(prompt, idx)
    elif _is_messages(prompt):
        raise ValueError(f"row {idx}: prompt is chat messages but the responses are strings.")
    else:
        prompt = _check_text(prompt, idx, "prompt")
    out: dict[str, Any] = {
        "prompt": prompt,
        "responses": [_read_response(r, idx, f"responses[{j}]", conversational) for j, r in enumerate(responses)],
    }
    scores = row.get("scores")
    if scores is not None:
        if not isinstance(scores, list) or len(scores) != k:
            raise ValueError(f"row {idx}, column 'scores': expected {k} numbers (one per response), got {scores!r}.")
        out["scores"] = [_number(s, idx, "scores") for s in scores]
    ranks = row.get("ranks")
    if ranks is not None:
        if not isinstance(ranks, list) or len(ranks) != k:
            raise ValueError(f"row {idx}, column 'ranks': expected {k} ranks (one per response), got {ranks!r}.")
        for r in ranks:
            if isinstance(r, bool) or not isinstance(r, (int, float)) or r != int(r) or not 1 <= r <= k:
                raise ValueError(f"row {idx}, column 'ranks': ranks are integers 1 (best) .. {k}; got {ranks!r}.")
        out["ranks"] = [int(r) for r in ranks]
    elif scores is not None:
        # 1 + the number of strictly better responses: ties share the better rank.
        out["ranks"] = [1 + sum(other > s for other in out["scores"]) for s in out["scores"]]
    else:
        raise ValueError(f"row {idx}: k-wise rows need 'ranks' or 'scores'; both are missing.")
    return out


def _read_unpaired(row: dict[str, Any], idx: int) -> dict[str, Any]:
    completion, prompt = row["completion"], row["prompt"]
    conversational = _is_messages(completion) or isinstance(completion, list)
    if conversational:
        prompt = _prompt_messages(prompt, idx)
        completion = _strip_repeated_prompt(prompt, _check_messages(completion, idx, "completion"))
        _check_response_turns(completion, idx, "completion")
    else:
        completion = _check_text(completion, idx, "completion")
        if _is_messages(prompt):
            raise ValueError(f"row {idx}: prompt is chat messages but completion is a string.")
        prompt = _check_text(prompt, idx, "prompt")
    return {"prompt": prompt, "completion": completion, "label": _flag(row["label"], idx, "label")}


def read_preferences(data: Any, *, num_proc: int | None = None) -> Any:
    """Check and normalise preference rows; returns a ``datasets.Dataset`` in one of :data:`FORMATS`.

    Pairs come back as ``prompt``, ``chosen``, ``rejected`` (all strings, or
    the prompt as messages and each response as its assistant turns), an
    implicit prompt made explicit; ``tie`` is renamed ``is_tie``; numbers are
    checked (``strength > 0``, ``0 <= target <= 1``, all finite). K-wise rows
    get ``ranks`` (derived from ``scores`` when absent). Other columns are
    kept as they are. A malformed row raises ``ValueError`` naming the row
    index and the column.

    Parameters
    ----------
    data : datasets.Dataset, list of dict, dict of lists or pandas.DataFrame
    num_proc : int, optional
        Worker processes for ``datasets.Dataset.map``.

    Examples
    --------
    >>> rows = [{"chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    ...          "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "go"}]}]
    >>> row = read_preferences(rows)[0]
    >>> row["prompt"], row["chosen"]
    ([{'role': 'user', 'content': 'hi'}], [{'role': 'assistant', 'content': 'hello'}])
    >>> read_preferences([{"chosen": "The sky is blue.", "rejected": "The sky is green."}])[0]
    {'chosen': ' blue.', 'rejected': ' green.', 'prompt': 'The sky is'}
    >>> read_preferences([{"prompt": "q", "responses": ["a", "b", "c"], "scores": [0.1, 2.0, 0.1]}])[0]["ranks"]
    [2, 1, 2]
    >>> read_preferences([{"prompt": "q", "chosen": "a", "rejected": "b", "target": 1.5}])
    Traceback (most recent call last):
    ...
    ValueError: row 0, column 'target': a soft target is P(chosen beats rejected) in [0, 1], got 1.5.
    """
    dataset = _as_dataset(data)
    if len(dataset) == 0:
        raise ValueError("the preference data has no rows.")
    columns = list(dataset.column_names)
    fmt = _detect_format(columns)
    tie_column: str | None = None
    if fmt == "pair":
        ties = [c for c in ("is_tie", "tie") if c in columns]
        if len(ties) == 2:
            raise ValueError("both 'is_tie' and 'tie' columns are present; keep one tie flag.")
        tie_column = ties[0] if ties else None

    def read(row: dict[str, Any], idx: int) -> dict[str, Any]:
        if fmt == "pair":
            out = _read_pair(row, idx)
            out.update(_read_pair_fields(row, idx, tie_column))
        elif fmt == "list":
            out = _read_list(row, idx)
        else:
            out = _read_unpaired(row, idx)
        out.update(_read_category(row, idx))
        return out

    remove = ["tie"] if tie_column == "tie" else []
    return dataset.map(read, with_indices=True, num_proc=num_proc, remove_columns=remove, desc="Reading preferences")


# ---------------------------------------------------------------- tokenising


@dataclass
class TokenizationReport:
    """What :func:`tokenize_preferences` did to the data: nothing is cut or dropped silently.

    Attributes
    ----------
    format : str
        ``"pair"``, ``"list"`` or ``"unpaired"``.
    conversational : bool
        Whether the chat template was applied.
    examples : int
        Rows read.
    kept : int
        Rows in the tokenised dataset (``examples - examples_dropped``).
    prompts_truncated, prompt_tokens_dropped : int
        Kept rows whose prompt was cut, and the prompt tokens cut (counted once
        per row: the prompt is shared by its responses).
    responses_truncated, response_tokens_dropped : int
        Responses cut (a pair has two, a list K, an unpaired row one) and the
        response tokens cut.
    examples_dropped : int
        Rows dropped because they were over-long (only with ``drop_overlong=True``).
    boundary_mismatches : int
        Rows whose tokenised prompt is not a prefix of the tokenised
        prompt + response (tokens merging across the boundary, or a chat
        template that renders the prompt differently alone); the response is
        taken to start where the two diverge, so the end of the prompt
        differs from what the model sees at generation time.
    max_length, max_prompt_length : int or None
        The limits used.
    longest_prompt, longest_sequence : int
        Longest prompt and longest prompt + response after truncation.
    categories : list of str
        The ``category`` labels, in the order of their ``category_id``.
    padding_tokens, batch_tokens : int
        Padding positions and all positions of the batches collated so far by
        a collator given this report (or passed to :meth:`add_batch`).
    """

    format: str
    conversational: bool
    examples: int = 0
    kept: int = 0
    prompts_truncated: int = 0
    prompt_tokens_dropped: int = 0
    responses_truncated: int = 0
    response_tokens_dropped: int = 0
    examples_dropped: int = 0
    boundary_mismatches: int = 0
    max_length: int | None = None
    max_prompt_length: int | None = None
    longest_prompt: int = 0
    longest_sequence: int = 0
    categories: list[str] = field(default_factory=list)
    padding_tokens: int = 0
    batch_tokens: int = 0

    @property
    def tokens_dropped(self) -> int:
        """Prompt plus response tokens cut by truncation."""
        return self.prompt_tokens_dropped + self.response_tokens_dropped

    @property
    def padding_fraction(self) -> float | None:
        """Share of padding in the batches collated so far; None before any."""
        return None if self.batch_tokens == 0 else self.padding_tokens / self.batch_tokens

    def add_batch(self, attention_mask: torch.Tensor) -> None:
        """Count the padding (zeros) of one collated batch's ``attention_mask``.

        Collators given ``report=`` call this themselves; call it from the
        training loop instead when the collator runs in DataLoader workers
        (their counts stay in the worker processes).
        """
        self.padding_tokens += int((attention_mask == 0).sum())
        self.batch_tokens += int(attention_mask.numel())

    def summary(self) -> str:
        """One line for logs."""
        parts = [f"{self.kept}/{self.examples} {self.format} rows kept"]
        if self.examples_dropped:
            parts.append(f"{self.examples_dropped} over-long rows dropped")
        parts.append(f"{self.prompts_truncated} prompts truncated ({self.prompt_tokens_dropped} tokens)")
        parts.append(f"{self.responses_truncated} responses truncated ({self.response_tokens_dropped} tokens)")
        if self.boundary_mismatches:
            parts.append(f"{self.boundary_mismatches} rows whose prompt tokens change when the response follows")
        parts.append(f"longest sequence {self.longest_sequence} (max_length={self.max_length})")
        if self.padding_fraction is not None:
            parts.append(f"padding {self.padding_fraction:.1%} of collated tokens")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """The counts as a plain dict (for loggers), with the derived ``tokens_dropped`` and ``padding_fraction``."""
        out = asdict(self)
        out.update(tokens_dropped=self.tokens_dropped, padding_fraction=self.padding_fraction)
        return out


def _check_limit(name: str, value: int | None, least: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
        raise ValueError(f"{name} must be None or an int >= {least}, got {value!r}.")


def _ids(encoded: Any) -> list[int]:
    ids = encoded["input_ids"] if isinstance(encoded, Mapping) or hasattr(encoded, "keys") else encoded
    if ids and isinstance(ids[0], list):  # a batch of one
        ids = ids[0]
    return [int(i) for i in ids]


class _Encoder:
    """Prompt and response token ids of one row, the response starting where the renderings diverge."""

    def __init__(self, tokenizer: Any, conversational: bool, add_eos: bool, template_kwargs: dict[str, Any]):
        self.tokenizer = tokenizer
        self.conversational = conversational
        self.add_eos = add_eos
        self.template_kwargs = template_kwargs
        self.eos = tokenizer.eos_token_id
        if add_eos and not conversational and self.eos is None:
            raise ValueError("the tokenizer has no eos_token to end responses with; set one or pass add_eos=False.")
        if (
            conversational
            and getattr(tokenizer, "chat_template", None) is None
            and "chat_template" not in (template_kwargs)
        ):
            raise ValueError(
                "the data are chat messages but the tokenizer has no chat_template; set tokenizer.chat_template "
                "or pass chat_template_kwargs={'chat_template': ...}."
            )

    def _render(self, messages: list[dict[str, Any]], generation_prompt: bool) -> list[int]:
        return _ids(
            self.tokenizer.apply_chat_template(
                messages,
                tokenize=True,
                return_dict=True,
                add_generation_prompt=generation_prompt,
                **self.template_kwargs,
            )
        )

    def __call__(self, prompt: Any, responses: list[Any]) -> tuple[list[int], list[list[int]], bool]:
        if self.conversational:
            # A prompt ending in an assistant turn is continued as is; otherwise it ends with the generation prompt.
            prompt_ids = self._render(prompt, generation_prompt=prompt[-1]["role"] != "assistant")
            full = [self._render(prompt + response, generation_prompt=False) for response in responses]
        else:
            prompt_ids = _ids(self.tokenizer(prompt))
            full = [_ids(self.tokenizer(prompt + response)) for response in responses]
            if self.add_eos:
                full = [ids if ids and ids[-1] == self.eos else [*ids, self.eos] for ids in full]
        boundary = min(_common_prefix(prompt_ids, ids) for ids in full)
        return prompt_ids[:boundary], [ids[boundary:] for ids in full], boundary < len(prompt_ids)


def _row_conversational(fmt: str, row: dict[str, Any]) -> bool:
    if fmt == "pair":
        return _is_messages(row["chosen"])
    if fmt == "list":
        return _is_messages(row["responses"][0])
    return _is_messages(row["completion"])


def tokenize_preferences(
    data: Any,
    tokenizer: Any,
    *,
    max_length: int | None = None,
    max_prompt_length: int | None = None,
    prompt_truncation: str = "keep_end",
    drop_overlong: bool = False,
    add_eos: bool = True,
    chat_template_kwargs: dict[str, Any] | None = None,
    num_proc: int | None = None,
) -> tuple[Any, TokenizationReport]:
    """Token ids of preference rows, split into prompt and responses, with a report of all truncation.

    The rows are read with :func:`read_preferences` first, so any format it
    knows works. Chat messages go through ``tokenizer.apply_chat_template``:
    the prompt rendered with the generation prompt, the prompt plus each
    response rendered as one conversation, and the response tokens are what
    follows the longest common prefix (so a template that renders the prompt
    differently alone is handled, and counted in ``boundary_mismatches``).
    Strings are tokenised as ``prompt + response`` (plain concatenation, as
    TRL does: put any separating space in the text) with the EOS token
    appended when ``add_eos`` and not already there.

    Output columns: ``prompt_ids`` and ``chosen_ids``/``rejected_ids``
    (pairs), ``response_ids`` (lists), or ``completion_ids`` (unpaired);
    ``category_id`` when there is a ``category``; every input column is kept.
    The column names match TRL's, so TRL's collators read pairs too.

    Parameters
    ----------
    data : datasets.Dataset, list of dict, dict of lists or pandas.DataFrame
    tokenizer : transformers tokenizer
    max_length : int, optional
        Most tokens of prompt + response (each response of a pair or list).
    max_prompt_length : int, optional
        Most prompt tokens.
    prompt_truncation : {"keep_end", "keep_start"}
        Which end of an over-long prompt to keep; responses always keep their start.
    drop_overlong : bool
        Drop rows that would be truncated instead of truncating them.
    add_eos : bool
        End string responses with the EOS token (chat templates end turns themselves).
    chat_template_kwargs : dict, optional
        Passed to ``apply_chat_template`` (e.g. ``chat_template``, ``tools``).
    num_proc : int, optional
        Worker processes for ``datasets.Dataset.map``.

    Returns
    -------
    (datasets.Dataset, TokenizationReport)
        The report is also logged (a warning when anything was cut or dropped).

    Examples
    --------
    >>> from bradley.train.toy import toy_tokenizer
    >>> tok = toy_tokenizer()
    >>> rows = [{"prompt": "tell me about cats", "chosen": " cats are good .", "rejected": " cats"}]
    >>> ds, report = tokenize_preferences(rows, tok, max_length=7)
    >>> tok.convert_ids_to_tokens(ds[0]["prompt_ids"])
    ['<s>', 'tell', 'me', 'about', 'cats']
    >>> tok.convert_ids_to_tokens(ds[0]["chosen_ids"]), tok.convert_ids_to_tokens(ds[0]["rejected_ids"])
    (['cats', 'are'], ['cats', '</s>'])
    >>> report.responses_truncated, report.response_tokens_dropped
    (1, 3)
    """
    _check_limit("max_length", max_length, 2)
    _check_limit("max_prompt_length", max_prompt_length, 1)
    if prompt_truncation not in ("keep_end", "keep_start"):
        raise ValueError(f"prompt_truncation must be 'keep_end' or 'keep_start', got {prompt_truncation!r}.")
    dataset = read_preferences(data, num_proc=num_proc)
    columns = dataset.column_names
    fmt = _detect_format(columns)
    conversational = _row_conversational(fmt, dataset[0])
    encode = _Encoder(tokenizer, conversational, add_eos, dict(chat_template_kwargs or {}))
    response_columns = {"pair": ["chosen", "rejected"], "list": ["responses"], "unpaired": ["completion"]}[fmt]
    id_columns = {"pair": ["chosen_ids", "rejected_ids"], "list": ["response_ids"], "unpaired": ["completion_ids"]}[fmt]
    categories = sorted(set(dataset["category"])) if "category" in columns else []
    category_ids = {c: i for i, c in enumerate(categories)}

    def cut_prompt(ids: list[int], keep: int) -> list[int]:
        if len(ids) <= keep:
            return ids
        return ids[len(ids) - keep :] if prompt_truncation == "keep_end" else ids[:keep]

    def tokenize(row: dict[str, Any], idx: int) -> dict[str, Any]:
        responses = row["responses"] if fmt == "list" else [row[c] for c in response_columns]
        prompt_ids, response_ids, mismatch = encode(row["prompt"], responses)
        keep = len(prompt_ids)
        if max_prompt_length is not None:
            keep = min(keep, max_prompt_length)
        if max_length is not None:
            keep = min(keep, max_length - 1)  # leave room for at least one response token
        prompt_cut = len(prompt_ids) - keep
        prompt_ids = cut_prompt(prompt_ids, keep)
        room = None if max_length is None else max_length - len(prompt_ids)
        response_cut = [0 if room is None else max(0, len(r) - room) for r in response_ids]
        response_ids = [r if room is None else r[:room] for r in response_ids]
        out: dict[str, Any] = {"prompt_ids": prompt_ids}
        if fmt == "list":
            out["response_ids"] = response_ids
        else:
            out.update(zip(id_columns, response_ids, strict=True))
        if "category" in row:
            out["category_id"] = category_ids[row["category"]]
        out["_prompt_cut"] = prompt_cut
        out["_response_cut"] = response_cut
        out["_mismatch"] = mismatch
        out["_longest"] = len(prompt_ids) + max(len(r) for r in response_ids)
        return out

    tokenized = dataset.map(tokenize, with_indices=True, num_proc=num_proc, desc="Tokenizing preferences")
    report = TokenizationReport(
        format=fmt,
        conversational=conversational,
        examples=len(tokenized),
        max_length=max_length,
        max_prompt_length=max_prompt_length,
        categories=categories,
    )
    prompt_cut = tokenized["_prompt_cut"]
    response_cut = tokenized["_response_cut"]
    overlong = [p > 0 or any(r) for p, r in zip(prompt_cut, response_cut, strict=True)]
    kept_rows = [i for i, bad in enumerate(overlong) if not (drop_overlong and bad)]
    report.examples_dropped = report.examples - len(kept_rows)
    report.kept = len(kept_rows)
    if report.kept == 0:
        raise ValueError(
            f"all {report.examples} rows are longer than max_length={max_length} / max_prompt_length="
            f"{max_prompt_length} and drop_overlong=True dropped them all."
        )
    mismatch = tokenized["_mismatch"]
    longest = tokenized["_longest"]
    for i in kept_rows:
        report.prompts_truncated += prompt_cut[i] > 0
        report.prompt_tokens_dropped += prompt_cut[i]
        report.responses_truncated += sum(r > 0 for r in response_cut[i])
        report.response_tokens_dropped += sum(response_cut[i])
        report.boundary_mismatches += bool(mismatch[i])
        report.longest_sequence = max(report.longest_sequence, longest[i])
    lengths = [len(ids) for ids in tokenized["prompt_ids"]]
    report.longest_prompt = max(lengths[i] for i in kept_rows)
    tokenized = tokenized.remove_columns(["_prompt_cut", "_response_cut", "_mismatch", "_longest"])
    if report.examples_dropped:
        # Only the rows that would otherwise have been truncated went away.
        tokenized = tokenized.select(kept_rows)
    cut_anything = report.examples_dropped or report.tokens_dropped or report.boundary_mismatches
    logger.log(logging.WARNING if cut_anything else logging.INFO, "tokenize_preferences: %s", report.summary())
    return tokenized, report


# ---------------------------------------------------------------- collating


def _pad(rows: list[list[int]], value: int, length: int) -> torch.Tensor:
    out = torch.full((len(rows), length), value, dtype=torch.long)
    for i, ids in enumerate(rows):
        out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def _padded_length(rows: list[list[int]], multiple: int | None) -> int:
    length = max(len(r) for r in rows)
    if multiple is not None:
        length = -(-length // multiple) * multiple
    return length


def _sequences(
    prompts: list[list[int]], responses: list[list[int]], pad_token_id: int, multiple: int | None
) -> dict[str, torch.Tensor]:
    rows = [p + r for p, r in zip(prompts, responses, strict=True)]
    length = _padded_length(rows, multiple)
    input_ids = _pad(rows, pad_token_id, length)
    attention_mask = _pad([[1] * len(r) for r in rows], 0, length)
    completion_mask = _pad([[0] * len(p) + [1] * len(r) for p, r in zip(prompts, responses, strict=True)], 0, length)
    labels = input_ids.masked_fill(completion_mask == 0, -100)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "completion_mask": completion_mask,
        "labels": labels,
    }


def _check_features(features: Sequence[Mapping[str, Any]], needed: Sequence[str], collator: str) -> None:
    if not features:
        raise ValueError(f"{collator}: got an empty list of examples.")
    for i, f in enumerate(features):
        missing = [name for name in needed if name not in f]
        if missing:
            raise KeyError(
                f"{collator}: example {i} lacks {missing} (has {sorted(f)}); tokenise the rows with "
                f"tokenize_preferences first."
            )


def _check_pad(pad_token_id: Any, pad_to_multiple_of: Any, collator: str) -> None:
    if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int):
        raise TypeError(f"{collator}: pad_token_id must be an int (e.g. tokenizer.pad_token_id), got {pad_token_id!r}.")
    if pad_to_multiple_of is not None and (
        isinstance(pad_to_multiple_of, bool) or not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1
    ):
        raise ValueError(f"{collator}: pad_to_multiple_of must be None or a positive int, got {pad_to_multiple_of!r}.")


def _scalar_fields(features: Sequence[Mapping[str, Any]], exclude: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """Per-example numbers that are PreferenceBatch fields (is_tie, margin, cached ref log-probs, ...), category_id."""
    out: dict[str, torch.Tensor] = {}
    skip = set(exclude)
    for name, value in features[0].items():
        if name in skip or not (name in BATCH_FIELDS or name == "category_id"):
            continue
        if isinstance(value, bool) or name in ("is_tie", "desirable"):
            out[name] = torch.tensor([bool(f[name]) for f in features])
        elif name == "category_id":
            out[name] = torch.tensor([int(f[name]) for f in features], dtype=torch.long)
        elif isinstance(value, (int, float)):
            out[name] = torch.tensor([float(f[name]) for f in features], dtype=torch.get_default_dtype())
    return out


@dataclass
class PairCollator:
    """Pads tokenised pairs into one batch with chosen and rejected stacked: rows ``[chosen; rejected]``.

    Reads ``prompt_ids``, ``chosen_ids``, ``rejected_ids`` (from
    :func:`tokenize_preferences`) and returns, for ``B`` examples:

    * ``input_ids``, ``attention_mask``, ``completion_mask`` (1 at response
      tokens), ``labels`` (``-100`` off the response): ``(2B, T)``, rows
      ``0..B-1`` the chosen sequences, ``B..2B-1`` the rejected ones, padded
      on the right with ``pad_token_id`` (to a multiple of
      ``pad_to_multiple_of`` when given);
    * every per-pair number that is a :class:`~bradley.nn.PreferenceBatch`
      field, shape ``(B,)``: ``is_tie`` (bool), ``margin``, ``strength``,
      ``target``, cached ``ref_chosen_logps``/``ref_rejected_logps``, ...;
      and ``category_id`` (long) when present.

    Padding is counted into ``report`` (a :class:`TokenizationReport`) when given.

    Examples
    --------
    >>> collate = PairCollator(pad_token_id=0)
    >>> batch = collate([{"prompt_ids": [5, 6], "chosen_ids": [7, 8], "rejected_ids": [9], "margin": 1.0},
    ...                  {"prompt_ids": [5], "chosen_ids": [7], "rejected_ids": [9, 9, 9], "margin": 2.0}])
    >>> batch["input_ids"].tolist()
    [[5, 6, 7, 8], [5, 7, 0, 0], [5, 6, 9, 0], [5, 9, 9, 9]]
    >>> batch["completion_mask"].tolist()
    [[0, 0, 1, 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 1, 1, 1]]
    >>> batch["margin"].tolist()
    [1.0, 2.0]
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    report: TokenizationReport | None = None

    def __post_init__(self) -> None:
        _check_pad(self.pad_token_id, self.pad_to_multiple_of, "PairCollator")

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        _check_features(features, ("prompt_ids", "chosen_ids", "rejected_ids"), "PairCollator")
        prompts = [list(f["prompt_ids"]) for f in features]
        responses = [list(f["chosen_ids"]) for f in features] + [list(f["rejected_ids"]) for f in features]
        batch = _sequences(prompts + prompts, responses, self.pad_token_id, self.pad_to_multiple_of)
        batch.update(_scalar_fields(features))
        if self.report is not None:
            self.report.add_batch(batch["attention_mask"])
        return batch


@dataclass
class ListCollator:
    """Pads tokenised k-wise rows into one batch of ``B * K`` sequences, K = the longest list in the batch.

    Row ``b * K + k`` is response ``k`` of example ``b``. A list shorter than
    K is filled with its prompt alone (no response tokens, so it costs no
    loss and attends to real tokens) and marked False in ``list_mask``.
    Returns ``input_ids``, ``attention_mask``, ``completion_mask``,
    ``labels`` ``(B*K, T)``; ``ranks`` ``(B, K)`` long (``K + 1`` at filled
    slots), ``list_mask`` ``(B, K)`` bool, ``response_scores`` ``(B, K)``
    when the rows have ``scores`` (0 at filled slots), ``category_id`` ``(B,)``.

    Examples
    --------
    >>> collate = ListCollator(pad_token_id=0)
    >>> batch = collate([{"prompt_ids": [5], "response_ids": [[6], [7, 7], [8]], "ranks": [2, 1, 3]},
    ...                  {"prompt_ids": [5, 5], "response_ids": [[9], [6]], "ranks": [1, 2]}])
    >>> batch["input_ids"].tolist()
    [[5, 6, 0], [5, 7, 7], [5, 8, 0], [5, 5, 9], [5, 5, 6], [5, 5, 0]]
    >>> batch["ranks"].tolist(), batch["list_mask"].tolist()
    ([[2, 1, 3], [1, 2, 4]], [[True, True, True], [True, True, False]])
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    report: TokenizationReport | None = None

    def __post_init__(self) -> None:
        _check_pad(self.pad_token_id, self.pad_to_multiple_of, "ListCollator")

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        _check_features(features, ("prompt_ids", "response_ids", "ranks"), "ListCollator")
        k = max(len(f["response_ids"]) for f in features)
        prompts: list[list[int]] = []
        responses: list[list[int]] = []
        ranks = torch.full((len(features), k), k + 1, dtype=torch.long)
        list_mask = torch.zeros(len(features), k, dtype=torch.bool)
        has_scores = "scores" in features[0]
        scores = torch.zeros(len(features), k, dtype=torch.get_default_dtype())
        for b, f in enumerate(features):
            n = len(f["response_ids"])
            if len(f["ranks"]) != n:
                raise ValueError(f"ListCollator: example {b} has {n} responses but {len(f['ranks'])} ranks.")
            prompt = list(f["prompt_ids"])
            prompts.extend([prompt] * k)
            responses.extend([list(r) for r in f["response_ids"]] + [[]] * (k - n))
            ranks[b, :n] = torch.tensor([int(r) for r in f["ranks"]])
            list_mask[b, :n] = True
            if has_scores:
                scores[b, :n] = torch.tensor([float(s) for s in f["scores"]])
        batch = _sequences(prompts, responses, self.pad_token_id, self.pad_to_multiple_of)
        batch["ranks"] = ranks
        batch["list_mask"] = list_mask
        if has_scores:
            batch["response_scores"] = scores
        batch.update(_scalar_fields(features, exclude=("ranks", "list_mask", "response_scores")))
        if self.report is not None:
            self.report.add_batch(batch["attention_mask"])
        return batch


@dataclass
class UnpairedCollator:
    """Pads tokenised unpaired (KTO) rows: ``(N, T)`` sequences plus ``desirable`` ``(N,)`` bool.

    With ``kl_pairs=True`` the batch has ``2N`` rows: the N real
    (prompt, completion) sequences, then N mismatched ones, prompt ``i`` with
    the completion of row ``(i + 1) mod N``, for KTO's estimate of the
    KL term (``policy_kl_logps``/``ref_kl_logps``); with ``N = 1`` the
    mismatched row is the real one.

    Examples
    --------
    >>> collate = UnpairedCollator(pad_token_id=0, kl_pairs=True)
    >>> batch = collate([{"prompt_ids": [5], "completion_ids": [6, 6], "label": True},
    ...                  {"prompt_ids": [7], "completion_ids": [8], "label": False}])
    >>> batch["input_ids"].tolist(), batch["desirable"].tolist()
    ([[5, 6, 6], [7, 8, 0], [5, 8, 0], [7, 6, 6]], [True, False])
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    kl_pairs: bool = False
    report: TokenizationReport | None = None

    def __post_init__(self) -> None:
        _check_pad(self.pad_token_id, self.pad_to_multiple_of, "UnpairedCollator")

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        _check_features(features, ("prompt_ids", "completion_ids", "label"), "UnpairedCollator")
        prompts = [list(f["prompt_ids"]) for f in features]
        completions = [list(f["completion_ids"]) for f in features]
        if self.kl_pairs:
            prompts, completions = prompts + prompts, completions + completions[1:] + completions[:1]
        batch = _sequences(prompts, completions, self.pad_token_id, self.pad_to_multiple_of)
        batch["desirable"] = torch.tensor([bool(f["label"]) for f in features])
        batch.update(_scalar_fields(features, exclude=("desirable",)))
        if self.report is not None:
            self.report.add_batch(batch["attention_mask"])
        return batch


# ---------------------------------------------------------------- to a loss's inputs


def split_pairs(values: torch.Tensor, n_pairs: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a result over a ``[chosen; rejected]`` batch (first dim ``2B``) into its chosen and rejected halves.

    Works for anything computed row by row on a :class:`PairCollator` batch:
    rewards ``(2B,)``, summed log-probs, per-token log-probs ``(2B, T)``.

    Examples
    --------
    >>> import torch
    >>> chosen, rejected = split_pairs(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    >>> chosen.tolist(), rejected.tolist()
    ([1.0, 2.0], [3.0, 4.0])
    """
    if not isinstance(values, torch.Tensor) or values.dim() == 0:
        raise TypeError(f"values must be a tensor with a leading [chosen; rejected] dimension, got {values!r}.")
    rows = values.shape[0]
    if rows % 2 or (n_pairs is not None and rows != 2 * n_pairs):
        expected = "an even number" if n_pairs is None else f"2 * n_pairs = {2 * n_pairs}"
        raise ValueError(
            f"values has {rows} rows (shape {tuple(values.shape)}); a [chosen; rejected] batch has {expected}."
        )
    half = rows // 2
    return values[:half], values[half:]


def loss_fields(batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The entries of a collated batch that are :class:`~bradley.nn.PreferenceBatch` fields.

    E.g. ``is_tie``, ``margin``, ``strength``, ``target``, cached reference
    log-probs, ``ranks``, ``list_mask``, ``desirable``; token ids, masks and
    ``category_id`` are left out.

    Examples
    --------
    >>> import torch
    >>> batch = PairCollator(0)([{"prompt_ids": [1], "chosen_ids": [2], "rejected_ids": [3], "is_tie": True}])
    >>> sorted(loss_fields(batch))
    ['is_tie']
    """
    return {name: value for name, value in batch.items() if name in BATCH_FIELDS}


def _token_logps(
    values: SequenceLogProbs | torch.Tensor, completion_mask: torch.Tensor | None, name: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs (R, T-1), their mask, and WPO's log_sum_sq_probs when present."""
    if isinstance(values, SequenceLogProbs):
        if completion_mask is not None and completion_mask.shape[1] - 1 != values.mask.shape[1]:
            raise ValueError(
                f"{name}: its mask has {values.mask.shape[1]} positions but completion_mask has shape "
                f"{tuple(completion_mask.shape)}; expected T - 1 positions (log-probs are shifted by one)."
            )
        return values.per_token, values.mask, values.log_sum_sq_probs
    if not isinstance(values, torch.Tensor) or values.dim() != 2:
        raise TypeError(f"{name} must be a SequenceLogProbs or a (rows, T - 1) tensor, got {values!r}.")
    if completion_mask is None:
        raise ValueError(f"{name} is a tensor, so completion_mask (rows, T) from the collator is needed.")
    if completion_mask.dim() != 2 or values.shape != (completion_mask.shape[0], completion_mask.shape[1] - 1):
        raise ValueError(
            f"{name} has shape {tuple(values.shape)} but completion_mask has shape {tuple(completion_mask.shape)}; "
            f"per-token log-probs are shifted by one (position t scores token t + 1), so expected "
            f"({completion_mask.shape[0]}, {completion_mask.shape[1] - 1})."
        )
    mask = completion_mask[:, 1:].bool()
    return values * mask, mask, None


def preference_batch(
    policy_token_logps: SequenceLogProbs | torch.Tensor,
    completion_mask: torch.Tensor | None = None,
    ref_token_logps: SequenceLogProbs | torch.Tensor | None = None,
    **fields: Any,
) -> PreferenceBatch:
    """A :class:`~bradley.nn.PreferenceBatch` from per-token log-probs of a ``[chosen; rejected]`` batch.

    One forward pass over a :class:`PairCollator` batch gives per-token
    log-probs for all ``2B`` rows; this splits them into chosen and rejected
    per-token log-probs and masks (the batch derives the summed and
    length-normalised log-probs and the lengths from them), adds the
    reference's when given, and any other fields (``is_tie``, ``margin``, ...;
    :func:`loss_fields` picks them out of the collated batch).

    Parameters
    ----------
    policy_token_logps : SequenceLogProbs or torch.Tensor of shape (2B, T-1)
        From :func:`bradley.nn.logprobs.model_logprobs` on the batch, or a
        tensor with position ``t`` scoring token ``t + 1`` (the
        ``bradley.nn.logprobs`` convention).
    completion_mask : torch.Tensor of shape (2B, T), optional
        The collator's; needed when log-probs are given as a tensor.
    ref_token_logps : SequenceLogProbs or torch.Tensor of shape (2B, T-1), optional
        The reference model's, on the same batch.
    **fields
        Other :class:`~bradley.nn.PreferenceBatch` fields of shape ``(B,)``.

    Examples
    --------
    >>> import torch
    >>> batch = PairCollator(0)([{"prompt_ids": [1, 2], "chosen_ids": [3, 4], "rejected_ids": [5]}])
    >>> token_logps = torch.tensor([[-9.0, -1.0, -2.0], [-9.0, -3.0, -7.0]])   # (2B, T-1); -9: prompt, -7: pad
    >>> pb = preference_batch(token_logps, batch["completion_mask"])
    >>> pb.get("policy_chosen_logps").tolist(), pb.get("policy_rejected_logps").tolist()
    ([-3.0], [-3.0])
    """
    per_token, mask, sq = _token_logps(policy_token_logps, completion_mask, "policy_token_logps")
    chosen, rejected = split_pairs(per_token)
    chosen_mask, rejected_mask = split_pairs(mask)
    out: dict[str, Any] = {
        "policy_chosen_token_logps": chosen,
        "policy_rejected_token_logps": rejected,
        "chosen_mask": chosen_mask,
        "rejected_mask": rejected_mask,
    }
    if sq is not None:
        out["chosen_log_sum_sq_probs"], out["rejected_log_sum_sq_probs"] = split_pairs(sq)
    if ref_token_logps is not None:
        ref, ref_mask, _ = _token_logps(ref_token_logps, completion_mask, "ref_token_logps")
        if ref_mask.shape != mask.shape or not torch.equal(ref_mask, mask):
            raise ValueError("ref_token_logps scores other positions than policy_token_logps; use the same batch.")
        out["ref_chosen_token_logps"], out["ref_rejected_token_logps"] = split_pairs(ref)
    overlap = sorted(set(fields) & set(out))
    if overlap:
        raise ValueError(f"fields {overlap} are computed here from the log-probs; do not pass them too.")
    out.update(fields)
    return PreferenceBatch.from_tensors(**out)


def list_preference_batch(
    policy_token_logps: SequenceLogProbs | torch.Tensor,
    completion_mask: torch.Tensor | None = None,
    ranks: torch.Tensor | None = None,
    list_mask: torch.Tensor | None = None,
    ref_token_logps: SequenceLogProbs | torch.Tensor | None = None,
    **fields: Any,
) -> PreferenceBatch:
    """A k-wise :class:`~bradley.nn.PreferenceBatch` from per-token log-probs of a :class:`ListCollator` batch.

    Sums the ``B * K`` rows' log-probs over response tokens into
    ``policy_logps`` ``(B, K)`` (and ``policy_avg_logps``, divided by the
    number of response tokens; ``ref_logps`` when the reference is given),
    with ``ranks`` and ``list_mask`` as collated (K is taken from ``ranks``).

    Examples
    --------
    >>> import torch
    >>> batch = ListCollator(0)([{"prompt_ids": [1], "response_ids": [[2, 3], [4]], "ranks": [2, 1]}])
    >>> token_logps = torch.tensor([[-1.0, -2.0], [-4.0, -5.0]])
    >>> pb = list_preference_batch(token_logps, batch["completion_mask"], batch["ranks"], batch["list_mask"])
    >>> pb.policy_logps.tolist(), pb.policy_avg_logps.tolist()
    ([[-3.0, -4.0]], [[-1.5, -4.0]])
    """
    if ranks is None or ranks.dim() != 2:
        raise ValueError(f"ranks must be the collated (B, K) ranks, got {ranks!r}.")
    per_token, mask, _ = _token_logps(policy_token_logps, completion_mask, "policy_token_logps")
    b, k = ranks.shape
    if per_token.shape[0] != b * k:
        raise ValueError(
            f"policy_token_logps has {per_token.shape[0]} rows but ranks is ({b}, {k}); expected B * K = {b * k}."
        )
    lengths = mask.sum(-1).reshape(b, k)
    total = per_token.sum(-1).reshape(b, k)
    out: dict[str, Any] = {
        "policy_logps": total,
        "policy_avg_logps": total / lengths.clamp(min=1).to(total.dtype),
        "ranks": ranks,
    }
    if list_mask is not None:
        out["list_mask"] = list_mask
    if ref_token_logps is not None:
        ref, _, _ = _token_logps(ref_token_logps, completion_mask, "ref_token_logps")
        out["ref_logps"] = ref.sum(-1).reshape(b, k)
    out.update(fields)
    return PreferenceBatch.from_tensors(**out)
