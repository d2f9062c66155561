"""DPO on a tiny causal language model built from a config (runs in seconds on a CPU).

The toy preference: after any prompt, responses made of even tokens are
preferred to responses made of odd tokens. Run: ``python examples/dpo_tiny.py``
"""

import copy

import torch

from bradley.nn import get
from bradley.nn.logprobs import sequence_logprobs

torch.manual_seed(0)
VOCAB, PROMPT, RESPONSE, BATCH = 16, 4, 4, 32


class TinyLM(torch.nn.Module):
    def __init__(self, vocab: int = VOCAB, width: int = 32):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        layer = torch.nn.TransformerEncoderLayer(width, nhead=2, dim_feedforward=64, batch_first=True)
        self.body = torch.nn.TransformerEncoder(layer, num_layers=1)
        self.head = torch.nn.Linear(width, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        causal = torch.nn.Transformer.generate_square_subsequent_mask(ids.shape[1])
        return self.head(self.body(self.embed(ids), mask=causal, is_causal=True))


def batch() -> dict[str, torch.Tensor]:
    prompt = torch.randint(0, VOCAB, (BATCH, PROMPT))
    even = 2 * torch.randint(0, VOCAB // 2, (BATCH, RESPONSE))
    out = {}
    for name, response in (("chosen", even), ("rejected", even + 1)):
        ids = torch.cat([prompt, response], dim=1)
        labels = ids.clone()
        labels[:, :PROMPT] = -100  # score response tokens only
        out[name + "_ids"], out[name + "_labels"] = ids, labels
    return out


policy = TinyLM()
reference = copy.deepcopy(policy).eval()
optimizer = torch.optim.AdamW(policy.parameters(), lr=3e-3)
loss_fn = get("sigmoid", beta=0.1)  # TRL's loss_type="sigmoid" (DPO)

for step in range(101):
    b = batch()
    with torch.no_grad():
        ref_c = sequence_logprobs(reference(b["chosen_ids"]), b["chosen_labels"]).sum
        ref_r = sequence_logprobs(reference(b["rejected_ids"]), b["rejected_labels"]).sum
    pol_c = sequence_logprobs(policy(b["chosen_ids"]), b["chosen_labels"]).sum
    pol_r = sequence_logprobs(policy(b["rejected_ids"]), b["rejected_labels"]).sum
    out = loss_fn(
        policy_chosen_logps=pol_c, policy_rejected_logps=pol_r, ref_chosen_logps=ref_c, ref_rejected_logps=ref_r
    )
    optimizer.zero_grad()
    out.loss.mean().backward()
    optimizer.step()
    if step % 20 == 0:
        print(f"step {step:3d}  loss {out.loss.mean():.4f}  margin {out.margins.mean():+.3f}  accuracy {out.accuracy.mean():.2f}")
