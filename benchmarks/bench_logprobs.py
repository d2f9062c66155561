"""Peak memory and time of LM-head log-probs under a DPO loss: full logits vs chunked vs TRL.

Forward and backward, from the last hidden states (B, T, H) and the LM head
weight (V, H), through a DPO loss on summed log-probs (first half of the batch
chosen, second half rejected, fixed reference log-probs). Three ways to get the
log-probs:

* ``naive``: ``hidden @ W.T`` then :func:`bradley.nn.logprobs.sequence_logprobs`
  (what ``model(...).logits`` plus a log-softmax costs);
* ``chunked``: :func:`bradley.nn.logprobs.chunked_sequence_logprobs`;
* ``trl``: TRL's fused LM-head kernel (``trl.kernels.ChunkedLogProbFunction``),
  called the way ``trl.trainer.utils.add_fused_lm_head`` calls it (its vocabulary
  tile width, labelled positions only where TRL compacts them, i.e. on Triton
  devices; every position elsewhere).

Peak extra memory is what a step allocates beyond the inputs, gradients
included: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU each method runs
in a fresh process and the growth of its peak resident set (``ru_maxrss``) is
reported (large buffers are mmap-ed, so this tracks the allocator's peak).
Time is the median of ``--repeats`` steps after one warm-up step.

GPU default (Qwen2-7B head: V = 152,064, H = 3,584; batch 4 x 2,048; bf16)::

    python benchmarks/bench_logprobs.py

Scaled down for CPU (about a minute on two cores)::

    python benchmarks/bench_logprobs.py --device cpu --small
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from bradley.nn.logprobs import chunked_sequence_logprobs, sequence_logprobs

METHODS = ("naive", "chunked", "trl")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def make_inputs(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    dtype, device = DTYPES[args.dtype], torch.device(args.device)
    # Scaled so that logits have unit-ish spread, as in a trained model.
    hidden = torch.randn(args.batch, args.seq, args.hidden, generator=g).to(device, dtype).requires_grad_()
    weight = (torch.randn(args.vocab, args.hidden, generator=g) / args.hidden**0.5).to(device, dtype).requires_grad_()
    labels = torch.randint(0, args.vocab, (args.batch, args.seq), generator=g).to(device)
    labels[:, : args.prompt] = -100
    ref = torch.randn(args.batch, generator=g, dtype=torch.float32).to(device) - 100.0
    return hidden, weight, labels, ref


def dpo(logps: torch.Tensor, ref: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    half = logps.shape[0] // 2
    rho = logps.float() - ref
    return -F.logsigmoid(beta * (rho[:half] - rho[half:])).mean()


def summed_logps(method: str, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, chunk: int | None):
    if method == "naive":
        return sequence_logprobs(hidden @ weight.t(), labels).sum
    if method == "chunked":
        return chunked_sequence_logprobs(hidden, weight, labels, chunk_size=chunk).sum
    from trl.kernels.chunked_logprob import ChunkedLogProbFunction, _use_triton
    from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE

    h, targets = hidden[:, :-1], labels[:, 1:]
    mask = targets != -100
    if _use_triton(hidden.device):
        per_token = ChunkedLogProbFunction.apply(
            h[mask], weight, None, targets[mask], 1.0, _CHUNKED_LOGPROB_CHUNK_SIZE, None, 1.0, ("log_probs",)
        )[0]
        per_token = per_token.new_zeros(mask.shape).masked_scatter(mask, per_token)
    else:
        flat = ChunkedLogProbFunction.apply(
            h.reshape(-1, h.shape[-1]),
            weight,
            None,
            targets.clamp(min=0).reshape(-1),
            1.0,
            _CHUNKED_LOGPROB_CHUNK_SIZE,
            None,
            1.0,
            ("log_probs",),
        )[0]
        per_token = flat.view(mask.shape).masked_fill(~mask, 0.0)
    return per_token.sum(-1)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def run_method(method: str, args: argparse.Namespace) -> dict:
    """Warm-up, then repeats; returns peak extra bytes over the inputs and the step times."""
    hidden, weight, labels, ref = make_inputs(args)
    device = hidden.device
    if method == "trl":
        import trl.trainer.utils  # noqa: F401  (imported before the baseline: its import is not the step's memory)

    def step() -> float:
        hidden.grad = weight.grad = None
        sync(device)
        start = time.perf_counter()
        dpo(summed_logps(method, hidden, weight, labels, args.chunk_size), ref).backward()
        sync(device)
        return time.perf_counter() - start

    if device.type == "cuda":
        torch.cuda.empty_cache()
        sync(device)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        before = peak_rss_bytes()
        step()
        peak = peak_rss_bytes() - before
    times = [step() for _ in range(args.repeats)]
    return {"method": method, "peak_extra_bytes": peak, "median_s": statistics.median(times), "times": times}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--small", action="store_true", help="CPU-sized shapes: V=32,000, H=256, batch 4 x 512")
    p.add_argument("--vocab", type=int, default=152_064)
    p.add_argument("--hidden", type=int, default=3_584)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=2_048)
    p.add_argument("--prompt", type=int, default=0, help="leading positions of each row that are prompt (-100)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    p.add_argument("--chunk-size", type=int, default=None, help="tokens per chunk (default: the library's)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--only", help=argparse.SUPPRESS)  # internal: one method in this process, JSON out
    args = p.parse_args()
    if args.small:
        args.vocab, args.hidden, args.seq = 32_000, 256, 512
        if args.chunk_size is None:
            args.chunk_size = 128

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.only:
        print(json.dumps(run_method(args.only, args)))
        return

    tokens = args.batch * (args.seq - 1 - max(args.prompt - 1, 0))
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    print(
        f"# {device_name}, torch {torch.__version__}: V={args.vocab}, H={args.hidden}, batch {args.batch} x "
        f"{args.seq} ({tokens} scored tokens), {args.dtype}, chunk_size={args.chunk_size or 'default'}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    full_logits = args.batch * args.seq * args.vocab * 4
    print(f"# float32 logits of the batch: {full_logits / 2**30:.2f} GiB")
    print("| method | peak extra memory (GiB) | vs naive | median time (s) | vs naive |")
    print("|---|---|---|---|---|")
    results = {}
    for method in args.methods.split(","):
        if args.device == "cpu":
            # A fresh process per method: ru_maxrss only ever grows.
            cmd = [sys.executable, __file__, *sys.argv[1:], "--only", method]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            results[method] = json.loads(out)
        else:
            results[method] = run_method(method, args)
        r, base = results[method], results.get("naive")
        mem_ratio = "" if base is None else f"{r['peak_extra_bytes'] / base['peak_extra_bytes']:.2f}"
        time_ratio = "" if base is None else f"{r['median_s'] / base['median_s']:.2f}"
        print(
            f"| {method} | {r['peak_extra_bytes'] / 2**30:.3f} | {mem_ratio} | {r['median_s']:.3f} | {time_ratio} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
