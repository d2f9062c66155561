"""Real comparison data shipped with bradley (see README.md in this folder)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pandas as pd

__all__ = ["arena_140k_path", "load_arena_140k", "load_vicuna80", "vicuna80_verdicts_path"]


def arena_140k_path() -> Path:
    """Path of the shipped Chatbot Arena battles (``model_a, model_b, winner``, CC BY 4.0)."""
    return Path(str(resources.files("bradley.datasets").joinpath("arena_human_preference_140k.csv.gz")))


def load_arena_140k() -> pd.DataFrame:
    """135,634 Chatbot Arena human votes (lmarena-ai/arena-human-preference-140k, CC BY 4.0).

    Returns
    -------
    pandas.DataFrame
        Columns ``model_a``, ``model_b``, ``winner`` (``model_a``, ``model_b``,
        ``tie``, ``both_bad``), in the data set's original order.

    Examples
    --------
    >>> battles = load_arena_140k()
    >>> len(battles)
    135634
    """
    return pd.read_csv(arena_140k_path(), engine="pyarrow")


#: Vicuna-80 question categories by question id (the benchmark's own grouping, ids 1-80)
VICUNA80_CATEGORIES: tuple[tuple[int, int, str], ...] = (
    (1, 10, "generic"), (11, 20, "knowledge"), (21, 30, "roleplay"), (31, 40, "common-sense"),
    (41, 50, "fermi"), (51, 60, "counterfactual"), (61, 67, "coding"), (68, 70, "math"), (71, 80, "writing"),
)


def vicuna80_verdicts_path() -> Path:
    """Path of the shipped PRD Vicuna-80 pairwise verdicts (MIT; see README.md in this folder)."""
    return Path(str(resources.files("bradley.datasets").joinpath("vicuna80_verdicts.csv.gz")))


def _vicuna80_category(question_id: pd.Series) -> pd.Series:
    category = pd.Series("", index=question_id.index, dtype=object)
    for low, high, name in VICUNA80_CATEGORIES:
        category[(question_id >= low) & (question_id <= high)] = name
    return category


def load_vicuna80(answers: str | os.PathLike[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PRD Vicuna-80 pairwise verdicts (human and LLM reviewers) and the judged responses.

    The verdicts come from the Peer Rank and Discussion study (Li, Patel, Du
    2023; GitHub ``bcdnlp/PRD``, MIT licence): 7,040 human ratings over 9
    models and 1,600 ratings by each of five LLM reviewers (gpt4, gpt35,
    claude, bard, vicuna-13b) over 5 models, on the 80 Vicuna questions. The
    answer texts are not shipped (README.md in this folder says why); pass
    ``answers`` to read them from a checkout of the PRD repository.

    Parameters
    ----------
    answers : path, optional
        A folder with PRD's ``answer_<model>.jsonl`` files (PRD's
        ``data/vicuna80/generations``; fields ``question_id`` and ``text``):
        their texts fill the ``answer`` column of ``responses``.

    Returns
    -------
    responses : pandas.DataFrame
        One row per judged response: ``question_id``, ``category`` (the
        Vicuna-80 category of the question) and ``model``; with ``answers``
        also ``answer`` (the text; missing files or lines give NaN).
    verdicts : pandas.DataFrame
        One row per rating: ``reviewer``, ``prompt`` (``threeclass`` or
        ``default``), ``model_1`` (shown first), ``model_2``,
        ``question_id``, ``category``, ``line_in_file`` and ``score``
        (1 = model_1 better, 2 = model_2 better, 3 = tie), plus ``outcome``
        (1.0, 0.0, 0.5: the same verdict as a result for ``model_1``).

    Examples
    --------
    >>> responses, verdicts = load_vicuna80()
    >>> len(verdicts), int((verdicts["reviewer"] == "human").sum())
    (15040, 7040)
    >>> sorted(responses["model"].unique())[:3]
    ['bard', 'claude', 'gpt35']
    """
    verdicts = pd.read_csv(vicuna80_verdicts_path())
    verdicts.insert(verdicts.columns.get_loc("question_id") + 1, "category",
                    _vicuna80_category(verdicts["question_id"]))
    verdicts["outcome"] = verdicts["score"].map({1: 1.0, 2: 0.0, 3: 0.5}).astype(float)
    both = pd.concat([verdicts[["question_id", "category", "model_1"]].rename(columns={"model_1": "model"}),
                      verdicts[["question_id", "category", "model_2"]].rename(columns={"model_2": "model"})])
    responses = (both.drop_duplicates().sort_values(["question_id", "model"], kind="stable")
                 .reset_index(drop=True))
    if answers is not None:
        responses = responses.merge(_read_answers(Path(answers)), on=["question_id", "model"], how="left")
    return responses, verdicts


def _read_answers(folder: Path) -> pd.DataFrame:
    """``question_id, model, answer`` from PRD-style ``answer_<model>.jsonl`` files."""
    files = sorted(folder.glob("answer_*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no answer_<model>.jsonl files in {folder}")
    parts = []
    for path in files:
        frame = pd.read_json(path, lines=True)
        missing = [c for c in ("question_id", "text") if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: needs the fields question_id and text (missing {missing}).")
        parts.append(pd.DataFrame({"question_id": frame["question_id"].astype(int),
                                   "model": path.stem.removeprefix("answer_"), "answer": frame["text"]}))
    return pd.concat(parts, ignore_index=True).drop_duplicates(["question_id", "model"])
