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
    for (const b of ["matmul f32", "chunk attention fwd+bwd", "Reformer LM step"]) {
      assert.ok(benches.includes(b), `${b} missing: ${text}`);
    }
    assert.ok(benches.includes("Sparse Transformer layer fwd+bwd"), text);
    for (const r of doc.rows) assert.ok(!/^failed/.test(r.note), `${r.bench}: ${r.note}`);
    const lm = doc.rows.find((r: { bench: string }) => r.bench === "Reformer LM step");
    assert.ok(lm.ms > 0 && lm.peakBytes > 0, JSON.stringify(lm));
  } finally {
    await Deno.remove(json);
  }
});
