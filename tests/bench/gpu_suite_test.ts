/**
 * Smoke test of the GPU benchmark suite: `gpu_suite.ts --small` end to end in a subprocess
 * (with the tiled attention kernels forced, so they also run inside a whole model step), and
 * its JSON.
 */
import assert from "node:assert/strict";

Deno.test("gpu_suite --small runs end to end and writes its JSON", async () => {
  const json = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./gpu_suite.ts", import.meta.url).pathname,
        "--small",
        "--json",
        json,
      ],
      env: {
        LONGSEQ_ATTN_KERNEL: "tiled",
        XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp",
      },
      stdout: "piped",
      stderr: "piped",
    });
    const out = await cmd.output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /\| bench \| size \| ms \| GFLOP\/s \| peak MiB \| note \|/);
    const doc = JSON.parse(await Deno.readTextFile(json));
    const benches = doc.rows.map((r: { bench: string }) => r.bench);
    const want = [
      "matmul f32",
      "matmul f16",
      "chunk attention fwd+bwd",
      "Reformer LM step f32",
      "Reformer LM step f16",
      "Sparse Transformer layer fwd+bwd f32",
      "Sparse Transformer layer fwd+bwd f16",
    ];
    for (const b of want) assert.ok(benches.includes(b), `${b} missing: ${text}`);
    for (const r of doc.rows) assert.ok(!/^failed/.test(r.note), `${r.bench}: ${r.note}`);
    for (const p of ["f32", "f16"]) {
      const lm = doc.rows.find((r: { bench: string }) => r.bench === `Reformer LM step ${p}`);
      assert.ok(lm.ms > 0 && lm.peakBytes > 0, JSON.stringify(lm));
    }
  } finally {
    await Deno.remove(json);
  }
});
