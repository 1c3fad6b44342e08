import assert from "node:assert/strict";
import { matmulCpu } from "../../../kernels/cpu/matmul.ts";
import type { MatmulSpec } from "../../../kernels/specs/matmul.ts";
import { matmulLimits, matmulWasm, MC, rowBlock } from "../../../kernels/wasm/matmul.ts";
import { WasmDevice } from "../../../kernels/wasm/device.ts";
import { openBlas } from "../../../kernels/wasm/blas.ts";
import { assertClose, cpu, randomArray, rng, sameBits, withDevices } from "./helpers.ts";

function spec(
  m: number,
  n: number,
  k: number,
  transA = false,
  transB = false,
  batchShape: number[] = [],
  aStrides: number[] = [],
  bStrides: number[] = [],
): MatmulSpec {
  return { batchShape, aStrides, bStrides, m, n, k, transA, transB };
}

/** Elements each operand needs: its largest batch offset plus one matrix. */
function extent(s: MatmulSpec, strides: readonly number[], rows: number): number {
  return s.batchShape.reduce((acc, d, i) => acc + (d - 1) * strides[i], 0) + rows * s.k;
}

async function run(dev: WasmDevice, s: MatmulSpec, A: Float32Array, B: Float32Array) {
  const a = dev.upload(A, "f32"), b = dev.upload(B, "f32");
  const size = s.batchShape.reduce((x, y) => x * y, 1) * s.m * s.n;
  const out = matmulWasm(dev, a, b, s);
  const r = await dev.read(out, "f32", size) as Float32Array;
  for (const x of [a, b, out]) dev.free(x);
  return r;
}

const cases: [string, MatmulSpec][] = [
  ["1x1x1", spec(1, 1, 1)],
  ["odd 5x7x3", spec(5, 7, 3)],
  ["k beyond one block, transA", spec(13, 17, 300, true)],
  ["transB", spec(19, 9, 11, false, true)],
  ["both transposed", spec(7, 23, 33, true, true)],
  ["n beyond one column block", spec(2, 1030, 3)],
  ["m=1 row", spec(1, 37, 19)],
  ["few rows, parallel column blocks", spec(3, 600, 40, false, false, [2], [120], [0])],
  ["m=1 transposed A, parallel", spec(1, 700, 200, true)],
  ["5 rows transposed A (tiles)", spec(5, 9, 6, true)],
  ["parallel tiles", spec(40, 70, 50)],
  ["two row blocks resized for two threads", spec(128, 24, 20)],
  ["three row blocks resized to four", spec(200, 16, 9)],
  ["n=1 column", spec(31, 1, 19, false, true)],
  ["empty m", spec(0, 5, 4)],
  ["empty k", spec(3, 5, 0)],
  ["batched", spec(6, 10, 7, false, false, [3], [42], [70])],
  ["broadcast batch dims", spec(5, 9, 4, true, false, [2, 3], [0, 20], [108, 0])],
];

Deno.test("wasm matmul matches the CPU reference; 1 and 2 threads agree bit for bit", async (t) => {
  await withDevices(async (one, two) => {
    const rand = rng(7);
    for (const [name, s] of cases) {
      await t.step(name, async () => {
        const A = randomArray(rand, extent(s, s.aStrides, s.m));
        const B = randomArray(rand, extent(s, s.bStrides, s.n));
        const ca = cpu.upload(A, "f32"), cb = cpu.upload(B, "f32");
        const want = matmulCpu(cpu, ca, cb, s).data as Float32Array;
        const r1 = await run(one, s, A, B);
        const r2 = await run(two, s, A, B);
        assertClose(r1, want, 2e-6 * (s.k + 1), 0, name);
        assert.ok(sameBits(r1, r2), `${name}: 1 and 2 threads differ`);
      });
    }
    for (const d of [one, two]) assert.equal(d.memory().liveBytes, 0);
  });
});

Deno.test("wasm matmul: batches whose packed Bs overflow the buffer run in several passes", async () => {
  const saved = matmulLimits.packedBBytes;
  matmulLimits.packedBBytes = 1; // one distinct B per pass
  try {
    await withDevices(async (one, two) => {
      const rand = rng(13);
      const s = spec(9, 20, 300, false, true, [2, 3], [0, 2700], [18000, 6000]);
      const A = randomArray(rand, extent(s, s.aStrides, s.m));
      const B = randomArray(rand, extent(s, s.bStrides, s.n));
      const want = matmulCpu(cpu, cpu.upload(A, "f32"), cpu.upload(B, "f32"), s).data;
      const r1 = await run(one, s, A, B);
      const r2 = await run(two, s, A, B);
      assertClose(r1, want as Float32Array, 2e-6 * (s.k + 1), 0, "several passes");
      assert.ok(sameBits(r1, r2), "1 and 2 threads differ");
    });
  } finally {
    matmulLimits.packedBBytes = saved;
  }
});

Deno.test("wasm matmul: few row blocks are resized so that the threads share them evenly", () => {
  assert.equal(rowBlock(128, 1, 1), MC);
  assert.equal(rowBlock(128, 1, 2), 66); // 66 + 62 rows, not 96 + 32
  assert.equal(rowBlock(200, 1, 2), 54); // four blocks
  assert.equal(rowBlock(128, 2, 2), 66);
  assert.equal(rowBlock(96, 2, 2), MC); // two full blocks
  assert.equal(rowBlock(64 * MC, 1, 2), MC); // many blocks: the threads balance them anyway
  assert.equal(rowBlock(5, 1, 2), 6); // one block of one tile row stays one block
});

const blas = openBlas(1);

Deno.test({
  // Only where the machine has OpenBLAS or Accelerate (CI machines usually do not).
  name: "wasm matmul through the system BLAS matches the reference; 1 and 2 threads agree",
  ignore: blas === null,
  fn: async (t) => {
    const saved = matmulLimits.blasMinMacs;
    matmulLimits.blasMinMacs = 1; // every non-empty product goes to BLAS
    try {
      await withDevices(async (one, two) => {
        assert.ok(one.blas && two.blas, "the devices opened the BLAS too");
        assert.match(two.description, /large matmuls via /);
        const rand = rng(11);
        for (const [name, s] of cases) {
          await t.step(name, async () => {
            const A = randomArray(rand, extent(s, s.aStrides, s.m));
            const B = randomArray(rand, extent(s, s.bStrides, s.n));
            const want = matmulCpu(cpu, cpu.upload(A, "f32"), cpu.upload(B, "f32"), s).data;
            const r1 = await run(one, s, A, B);
            const r2 = await run(two, s, A, B);
            assertClose(r1, want as Float32Array, 2e-6 * (s.k + 1), 0, name);
            assert.ok(sameBits(r1, r2), `${name}: 1 and 2 threads differ`);
          });
        }
      });
    } finally {
      matmulLimits.blasMinMacs = saved;
    }
  },
});

Deno.test("the system BLAS stays off without asking: LONGSEQ_BLAS=0 and blas: false", async () => {
  const before = Deno.env.get("LONGSEQ_BLAS");
  Deno.env.set("LONGSEQ_BLAS", "0");
  try {
    assert.equal(openBlas(1), null);
  } finally {
    if (before === undefined) Deno.env.delete("LONGSEQ_BLAS");
    else Deno.env.set("LONGSEQ_BLAS", before);
  }
  const dev = await WasmDevice.create({ threads: 1, blas: false });
  try {
    assert.equal(dev.blas, null);
    assert.doesNotMatch(dev.description, /via/);
  } finally {
    dev.dispose();
  }
});
