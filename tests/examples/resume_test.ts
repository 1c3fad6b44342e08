/**
 * `--resume` from a checkpoint whose step counter was tampered with: a non-number, NaN, a
 * negative or fractional step is rejected by the loader (naming the file and the leaf), and a
 * step beyond `--steps` is rejected by the training loop; none of them exits 0. A config number
 * stored as a string is reported as a string by `generate`.
 */
import assert from "node:assert/strict";
import { decodeSafetensors, encodeSafetensors } from "../../io/safetensors.ts";
import { TREE_METADATA_KEY } from "../../io/checkpoint.ts";

const ROOT = new URL("../../", import.meta.url);
const TINY = [
  "--len=8",
  "--vocab=5",
  "--d-model=8",
  "--d-ff=8",
  "--heads=2",
  "--chunk-len=4",
  "--batch=2",
  "--eval-batches=1",
  "--eval-hashes=1",
  "--device=cpu",
];

async function example(name: string, args: string[]): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `examples/${name}.ts`, ...args],
    cwd: ROOT,
    env: { XDG_RUNTIME_DIR: "/tmp", CI: "true", NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout) + dec.decode(stderr) };
}
const copyTask = (args: string[]) => example("copy_task", [...TINY, ...args]);

/** The checkpoint at `path` with its `step` leaf stored as `stored`. */
function withStep(bytes: Uint8Array, stored: unknown): Uint8Array {
  const { tensors, metadata } = decodeSafetensors(bytes);
  const tree = JSON.parse(metadata[TREE_METADATA_KEY]);
  const i = tree.def.keys.indexOf("step");
  assert.ok(i >= 0 && tree.def.children[i].kind === "leaf");
  let leaf = 0; // the step leaf's index: count the leaves before it
  const count = (d: { kind: string; children?: unknown[] }): number =>
    d.kind === "leaf" ? 1 : d.children!.reduce((n: number, c) => n + count(c as never), 0);
  for (let k = 0; k < i; k++) leaf += count(tree.def.children[k]);
  tree.leaves[leaf] = stored;
  return encodeSafetensors(tensors, { ...metadata, [TREE_METADATA_KEY]: JSON.stringify(tree) });
}

Deno.test("resume rejects a tampered step", async () => {
  const dir = await Deno.makeTempDir({ prefix: "resume_test_" });
  try {
    const ok = await copyTask(["--steps=2", `--out=${dir}`]);
    assert.equal(ok.code, 0, ok.out);
    const path = `${dir}/checkpoint.safetensors`;
    const good = Deno.readFileSync(path);
    const cases: [unknown, RegExp][] = [
      [{ value: "abc" }, /leaf step: expected a number .*found the string "abc"/],
      [{ number: "NaN" }, /leaf step: expected a finite number, found NaN/],
      [{ value: -5 }, /leaf step: expected a non-negative number, found -5/],
      [{ value: 1.5 }, /leaf step: expected a safe integer/],
      [{ value: 1e9 }, /is at step 1000000000, beyond the 4 steps of this run/],
    ];
    for (const [stored, re] of cases) {
      Deno.writeFileSync(path, withStep(good, stored));
      const r = await copyTask(["--steps=4", `--out=${dir}`, "--resume"]);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, re);
      assert.match(r.out, /checkpoint\.safetensors/);
    }
    // A model config number stored as a string: the message shows it as a string.
    const { tensors, metadata } = decodeSafetensors(good);
    const config = JSON.parse(metadata.config);
    config.model.chunkLen = "4";
    Deno.writeFileSync(
      path,
      encodeSafetensors(tensors, { ...metadata, config: JSON.stringify(config) }),
    );
    const r = await example("generate", [`--checkpoint=${path}`, "--tokens=1", "--device=cpu"]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /chunkLen must be a positive integer, got "4" \(a string\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
