/**
 * The split planners of `kernels/webgpu/windows.ts` on a lowered binding limit: every window
 * starts at an aligned byte and fits the limit, pieces cover the work exactly once, and the
 * strided bounding box holds every element a piece reads.
 */
import assert from "node:assert/strict";
import { flatPieces, rowPieces, stridedSpan } from "../../kernels/webgpu/windows.ts";
import type { GpuBindable, GpuStorage } from "../../kernels/webgpu/device.ts";
import { gpu, lowered } from "./large_buffer_util.ts";

Deno.test("stridedSpan holds every index a range of a strided walk reads", () => {
  const cases: [number[], number[], number][] = [
    [[4, 300, 8], [8, 32, 1], 0],
    [[30, 7], [-7, 1], 209],
    [[5, 6, 7], [0, 7, 1], 3],
    [[9, 11], [1, 9], 0],
  ];
  for (const [shape, strides, offset] of cases) {
    const n = shape.reduce((a, b) => a * b, 1);
    for (const [lo, hi] of [[0, n], [3, 17], [n - 5, n], [40, 41], [11, 90]]) {
      const [min, max] = stridedSpan(shape, strides, offset, lo, Math.min(hi, n));
      for (let i = lo; i < Math.min(hi, n); i++) {
        let rem = i, j = offset;
        for (let d = shape.length - 1; d >= 0; d--) {
          j += (rem % shape[d]) * strides[d];
          rem = Math.floor(rem / shape[d]);
        }
        assert.ok(j >= min && j <= max, `${shape} ${strides}: ${j} outside [${min}, ${max}]`);
      }
    }
  }
});

const windowOf = (b: GpuBindable) =>
  "storage" in b ? b : { storage: b, offset: 0, size: b.byteLength };

Deno.test({
  name: "rowPieces and flatPieces keep windows aligned, within the limit, covering the work",
  ignore: !gpu,
  fn: async () => {
    const d = gpu!;
    const store: GpuStorage[] = [d.alloc("f32", 3000), d.alloc("f32", 300), d.alloc("f16", 3000)];
    try {
      await lowered(d, 4096, () => {
        const [x, y, h] = store;
        const rows = rowPieces(d, "test", [300, 10], 300, [
          { storage: x, eb: 4, perRow: 10 },
          { storage: y, eb: 4, perRow: 1 },
          { storage: h, eb: 2, perRow: 10 },
        ]);
        let next = 0;
        for (const { start, count, binds } of rows) {
          assert.equal(start, next);
          next += count;
          binds.map(windowOf).forEach((w, k) => {
            assert.equal(w.offset % d.bindingAlignment, 0);
            assert.ok(w.size <= 4096 && w.size % 4 === 0);
            assert.equal(w.offset, start * [40, 4, 20][k]);
          });
        }
        assert.equal(next, 300);
        const flat = flatPieces(d, "test", [100, 30], [{ storage: x, eb: 4 }], [
          { storage: h, eb: 2, strides: [1, 100], offset: 0 },
        ]);
        next = 0;
        for (const { first, count, anchored, strided } of flat) {
          assert.equal(first, next);
          next += count;
          const [lo, hi] = stridedSpan([100, 30], [1, 100], 0, first, first + count);
          const spans: [number, number, number][] = [[first, first + count - 1, 4], [lo, hi, 2]];
          [...anchored, ...strided].forEach(({ bind, base }, k) => {
            const w = windowOf(bind);
            const [from, to, eb] = spans[k];
            assert.equal(w.offset % d.bindingAlignment, 0);
            assert.ok(w.size <= 4096);
            assert.equal(base * eb, w.offset);
            assert.ok(w.offset <= from * eb && (to + 1) * eb <= w.offset + w.size, "covered");
          });
        }
        assert.equal(next, 3000);
      });
    } finally {
      store.forEach((s) => d.free(s));
    }
  },
});
