/**
 * Sort throughput on the default device: argsort (and sortWithIndices) of one 1M-key row
 * (radix path), of [64, 16384] (LSH-like: one row per head) and of [4096, 256] (short rows,
 * in-workgroup path). Each iteration waits for the device, so on a fast GPU the figure includes
 * one submit-and-wait round trip; the "x10 per sync" entries (hardware adapters only) show the
 * pipelined cost: time / 10 per sort.
 */
import { init, scope, sync, tensor } from "../../mod.ts";
import { argsort, sortWithIndices } from "../../ops/sort.ts";

const { backend, adapter } = await init({ quiet: true });
const software = /llvmpipe|software|cpu/i.test(adapter) || backend === "cpu-reference";

function keys(n: number): Float32Array {
  let s = 12345;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

for (const shape of [[1 << 20], [64, 16384], [4096, 256]]) {
  const name = `f32${JSON.stringify(shape)} on ${backend}`;
  const x = tensor(keys(shape.reduce((a, b) => a * b, 1)), { shape });
  Deno.bench(`argsort ${name}`, { group: name }, async () => {
    scope(() => argsort(x));
    await sync();
  });
  Deno.bench(`sortWithIndices ${name}`, { group: name }, async () => {
    scope(() => sortWithIndices(x));
    await sync();
  });
  if (!software) {
    Deno.bench(`argsort ${name} x10 per sync`, { group: name }, async () => {
      for (let i = 0; i < 10; i++) scope(() => argsort(x));
      await sync();
    });
  }
}
