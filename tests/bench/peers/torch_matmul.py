"""PyTorch f32 matmul GFLOP/s on the CPU at the sizes of tests/bench/wasm_matmul_bench.ts.

Not part of CI. Run with a Python that has torch, e.g.
    /work/venv/bin/python tests/bench/peers/torch_matmul.py
Prints the best of several timed runs per size (the machine may be shared).
"""
import time

import torch

print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
for n in (256, 512, 1024):
    a = torch.rand(n, n, dtype=torch.float32) - 0.5
    b = torch.rand(n, n, dtype=torch.float32) - 0.5
    for _ in range(3):
        a @ b
    reps = 40 if n < 1024 else 10
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    print(f"matmul {n}^3: {2 * n**3 / best / 1e9:.1f} GFLOP/s (best of {reps}: {best * 1e3:.2f} ms)")
