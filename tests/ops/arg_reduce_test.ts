import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import type { DType } from "../../mod.ts";
import { noLeaks, testDevices } from "../util.ts";

// Rows whose every value equals a kernel's starting value (the reduction's identity) must give
// index 0 like any other tie, on every WebGPU path: row kernel, column kernel, multi-pass
// (segmented) rows and columns, and the flattened search.
const EXTREMES: [string, DType, number][] = [
  ["argmax", "f32", -Infinity],
  ["argmin", "f32", Infinity],
  ["argmax", "i32", -(2 ** 31)],
  ["argmin", "i32", 2 ** 31 - 1],
  ["argmax", "u32", 0],
  ["argmin", "u32", 2 ** 32 - 1],
];
// [shape, axis]: rows, columns (inner >= 8), long rows and long columns cut into segments.
const LAYOUTS: [number[], number | undefined][] = [
  [[3, 5], 1],
  [[5, 9], 0],
  [[2, 20000], 1],
  [[300, 8], 0],
  [[4, 7], undefined],
];

Deno.test("argmax/argmin of rows made of the identity value give the first index", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          for (const [op, dtype, v] of EXTREMES) {
            const f = op === "argmax" ? T.argmax : T.argmin;
            for (const [shape, axis] of LAYOUTS) {
              const x = T.full(shape, v, { dtype, device });
              const r = await f(x, axis).data();
              const what = `${op} ${dtype} ${v} ${JSON.stringify(shape)} axis ${axis}`;
              assert.ok(r.every((i) => i === 0), `${what}: ${r.slice(0, 8)}`);
              // A later, strictly better value still wins.
              if (axis === undefined) continue;
              const n = shape[axis];
              const data = new Float64Array(shape[0] * shape[1]).fill(v);
              const better = dtype === "f32" ? 0 : op === "argmax" ? v + 1 : v - 1;
              const at = n - 2;
              for (let k = 0; k < data.length; k++) {
                const j = axis === 1 ? k % shape[1] : Math.floor(k / shape[1]);
                if (j === at) data[k] = better;
              }
              const y = T.tensor(Array.from(data), { dtype, device, shape });
              const ry = await f(y, axis).data();
              assert.ok(
                ry.every((i) => i === at),
                `${what} (one better at ${at}): ${ry.slice(0, 8)}`,
              );
            }
          }
        })
      ));
  }
});

Deno.test("argmax/argmin return the first NaN's index on every path (NumPy)", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          for (const [shape, axis] of LAYOUTS) {
            for (const fill of [-Infinity, Infinity, 1]) {
              const n = axis === undefined ? shape[0] * shape[1] : shape[axis];
              const [a, b] = [Math.floor(n / 3), n - 1];
              const data = new Float32Array(shape[0] * shape[1]).fill(fill);
              for (let k = 0; k < data.length; k++) {
                const j = axis === undefined
                  ? k
                  : axis === 1
                  ? k % shape[1]
                  : Math.floor(k / shape[1]);
                if (j === a || j === b) data[k] = NaN;
              }
              const x = T.tensor(data, { shape, device });
              for (const f of [T.argmax, T.argmin]) {
                const r = await f(x, axis).data();
                assert.ok(
                  r.every((i) => i === a),
                  `${JSON.stringify(shape)} ${axis} ${fill}: ${r.slice(0, 8)}`,
                );
              }
            }
          }
        })
      ));
  }
});
