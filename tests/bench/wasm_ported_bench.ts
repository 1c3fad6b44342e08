/**
 * The kernels ported to the wasm backend from the reference (issue 11) through the public
 * ops, on the CPU backend (2 threads) against the CPU reference: argsort of [8, 4096] (the LSH
 * bucket sort's shape) with f32 keys and with small i32 bucket ids, random.normal of 2^18, and
 * an embedding's take and scatterAdd ([1000, 64] table, 2048 lookups). The machine may be
 * shared, so take the best of several runs.
 *
 *   XDG_RUNTIME_DIR=/tmp deno bench -A tests/bench/wasm_ported_bench.ts
 */
import * as T from "../../mod.ts";
import { random } from "../../ops/random.ts";

await T.init({ backend: "cpu-reference", quiet: true });
await T.init({ backend: "cpu", quiet: true, threads: 2 });

const DEVICES = ["cpu-reference", "cpu"] as const;
let seed = 12345;
/** A deterministic value in [0, 1). */
const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;

const keysF32 = Float32Array.from({ length: 8 * 4096 }, next);
const buckets = Int32Array.from({ length: 8 * 4096 }, () => Math.floor(next() * 64));
const table = Float32Array.from({ length: 1000 * 64 }, next);
const rows = Int32Array.from({ length: 2048 }, () => Math.floor(next() * 1000));
const grads = Float32Array.from({ length: 2048 * 64 }, next);

for (const device of DEVICES) {
  const baseline = device === "cpu-reference";
  const x = T.keep(T.tensor(keysF32, { shape: [8, 4096], device }));
  const b = T.keep(T.tensor(buckets, { shape: [8, 4096], device }));
  const key = T.keep(random.key(0, { device }));
  const w = T.keep(T.tensor(table, { shape: [1000, 64], device }));
  const idx = T.keep(T.tensor(rows, { device }));
  const g = T.keep(T.tensor(grads, { shape: [2048, 64], device }));
  const zero = T.keep(T.zeros([1000, 64], { device }));
  const cases: [string, () => T.Tensor][] = [
    ["argsort f32 [8, 4096]", () => T.argsort(x)],
    ["argsort i32 buckets [8, 4096]", () => T.argsort(b)],
    ["random.normal [2^18]", () => random.normal(key, [1 << 18])],
    ["take [1000, 64] by 2048 rows", () => T.take(w, idx)],
    ["scatterAdd 2048 rows into [1000, 64]", () => T.scatterAdd(zero, idx, g)],
  ];
  for (const [group, f] of cases) {
    Deno.bench(device, { group, baseline }, async () => {
      using y = T.scope(f);
      await y.data();
    });
  }
}
