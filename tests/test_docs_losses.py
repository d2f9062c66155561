"""docs/losses.md stays true: its loss table is the registry's, and its Python examples run as written."""

import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from bradley.nn import registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "losses.md"
PAIR = ("policy_chosen_logps", "policy_rejected_logps", "ref_chosen_logps", "ref_rejected_logps")
TOKEN_LEVEL = ("chosen_mask", "rejected_mask", "chosen_log_sum_sq_probs", "rejected_log_sum_sq_probs")


def render_loss_table() -> str:
    """The markdown table of every registered loss (run this file to print it)."""
    registry._ensure_loaded()
    specs = {id(s): s for s in registry._REGISTRY.values()}.values()
    rows = [
        "| name (aliases) | TRL | inputs | optional inputs | hyperparameters | paper symbols |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("reward", "policy"):
        for s in sorted((s for s in specs if s.kind == kind), key=lambda s: s.name):
            name = f"`{s.name}`" + (f" ({', '.join(f'`{a}`' for a in s.aliases)})" if s.aliases else "")
            inputs = ["pair log-probs"] if all(n in s.inputs for n in PAIR) else []
            inputs += [f"`{n}`" for n in s.inputs if not (inputs and n in PAIR)]
            optional = [f"`{n}`" for n in s.optional_inputs if not n.endswith("_token_logps") and n not in TOKEN_LEVEL]
            if any(n.endswith("_token_logps") for n in s.optional_inputs):
                optional.append("per-token log-probs + masks")
            symbols = "; ".join(f"{k} = {v}" for k, v in s.symbols.items())
            rows.append(
                f"| {name} | {s.trl or '—'} | {', '.join(inputs)} | {', '.join(optional) or '—'} | "
                f"{s.describe_hyperparameters()} | {symbols or '—'} |"
            )
    return "\n".join(rows)


def test_loss_table_in_docs_is_the_registry():
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- loss-table:start -->\n(.*?)\n<!-- loss-table:end -->", text, re.S)
    assert match, "docs/losses.md lost its loss-table markers"
    assert match.group(1) == render_loss_table(), (
        "docs/losses.md's loss table is out of date: regenerate it with `python tests/test_docs_losses.py`"
    )
    # a guard against an empty registry making the comparison vacuous
    assert match.group(1).count("\n| `") >= 40


def _python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)


def test_docs_python_examples_run(capsys):
    blocks = _python_blocks()
    assert blocks
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), {"__name__": "__docs__"})
    printed = capsys.readouterr().out
    assert "sigmoid" in printed and "accuracy" in printed


if __name__ == "__main__":
    sys.stdout.write(render_loss_table() + "\n")
