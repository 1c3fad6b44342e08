"""HuggingFace ReformerModelWithLMHead training step on the CPU: the PyTorch peer of
tests/bench/reformer_step.ts with the same configuration:
    --d-ff 1024 --vocab 256 --activation relu --ff-chunks 1 --head-chunks 1
(ReformerConfig's defaults: relu, no feed-forward or LM-head chunking; `--act gelu_new` with
reformer_step.ts's `--activation gelu` compares the tanh GELU instead).

Not part of CI. Run with a Python that has torch and transformers installed:
    python tests/bench/peers/torch_reformer_step.py --lens 1024,4096
6 LSH-attention layers, dModel 256, dFF 1024, 4 heads, 2 hashes,
chunk 64, vocabulary 256, axial positions, batch 1; one step = forward, backward and Adam.
Prints the best and the median of the timed steps (the machine may be shared).
"""
import argparse
import statistics
import time

import torch
from transformers import ReformerConfig, ReformerModelWithLMHead

p = argparse.ArgumentParser()
p.add_argument("--lens", default="1024")
p.add_argument("--steps", type=int, default=5)
p.add_argument("--act", default="relu", help="hidden_act (ReformerConfig's default: relu)")
args = p.parse_args()

print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
for n in [int(x) for x in args.lens.split(",")]:
    side = 1 << ((n.bit_length() - 1 + 1) // 2)  # axial shape: two factors of n
    axial = (side, n // side) if n % side == 0 else (n, 1)
    cfg = ReformerConfig(
        vocab_size=256,
        hidden_size=256,
        feed_forward_size=1024,
        num_attention_heads=4,
        hidden_act=args.act,
        attention_head_size=64,
        attn_layers=["lsh"] * 6,  # as tests/bench/reformer_step.ts (attention "lsh")
        num_hashes=2,
        lsh_attn_chunk_length=64,
        local_attn_chunk_length=64,
        num_buckets=None,
        axial_pos_embds=True,
        axial_pos_shape=axial,
        axial_pos_embds_dim=(64, 192),
        max_position_embeddings=n,
        is_decoder=True,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        lsh_attention_probs_dropout_prob=0.0,
        local_attention_probs_dropout_prob=0.0,
        axial_pos_embds_init_std=0.02,
    )
    torch.manual_seed(0)
    model = ReformerModelWithLMHead(cfg)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ids = torch.randint(0, 256, (1, n))

    def step():
        opt.zero_grad()
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()

    step()  # warm-up
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    print(f"len {n}: {min(times):.0f} ms/step best, {statistics.median(times):.0f} median "
          f"of {args.steps}")
