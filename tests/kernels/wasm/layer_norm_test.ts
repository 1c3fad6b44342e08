import assert from "node:assert/strict";
import type { WasmDevice } from "../../../kernels/wasm/device.ts";
import { type LayerNormSpec, layerNormWasm } from "../../../kernels/wasm/layer_norm.ts";
import { assertClose, randomArray, rng, sameBits, withDevices } from "./helpers.ts";

/** Float64 reference: `[y, mean, rstd]`. */
function reference(
  x: Float32Array,
  g: Float32Array | null,
  b: Float32Array | null,
  s: LayerNormSpec,
) {
  const y = new Float32Array(s.rows * s.n), mean = new Float32Array(s.rows);
  const rstd = new Float32Array(s.rows);
  for (let r = 0; r < s.rows; r++) {
    let m = 0, v = 0;
    for (let i = 0; i < s.n; i++) m += x[r * s.n + i];
    m /= s.n;
    for (let i = 0; i < s.n; i++) v += (x[r * s.n + i] - m) ** 2;
    const rs = 1 / Math.sqrt(v / s.n + s.eps);
    mean[r] = m;
    rstd[r] = rs;
    for (let i = 0; i < s.n; i++) {
      y[r * s.n + i] = (x[r * s.n + i] - m) * rs * (g ? g[i] : 1) + (b ? b[i] : 0);
    }
  }
  return [y, mean, rstd];
}

async function run(
  dev: WasmDevice,
  data: (Float32Array | null)[],
  s: LayerNormSpec,
): Promise<Float32Array[]> {
  const st = data.map((d) => (d ? dev.upload(d, "f32") : null));
  const outs = layerNormWasm(dev, st, s);
  const res = await Promise.all(outs.map((o, i) => dev.read(o, "f32", i ? s.rows : s.rows * s.n)));
  for (const x of [...st, ...outs]) if (x) dev.free(x);
  return res as Float32Array[];
}

Deno.test("wasm layer norm matches a float64 reference", async (t) => {
  const rand = rng(21);
  const cases: [string, LayerNormSpec, boolean][] = [
    ["odd width with gamma and beta", { rows: 3, n: 37, eps: 1e-5 }, true],
    ["no affine", { rows: 2, n: 8, eps: 1e-5 }, false],
    ["width 1", { rows: 4, n: 1, eps: 1e-5 }, true],
    ["no rows", { rows: 0, n: 5, eps: 1e-5 }, true],
    ["parallel rows", { rows: 70, n: 513, eps: 1e-6 }, true],
  ];
  await withDevices(async (one, two) => {
    for (const [name, s, affine] of cases) {
      await t.step(name, async () => {
        const x = randomArray(rand, s.rows * s.n, -3, 5);
        const g = affine ? randomArray(rand, s.n, 0.5, 1.5) : null;
        const b = affine ? randomArray(rand, s.n) : null;
        const want = reference(x, g, b, s);
        const r1 = await run(one, [x, g, b], s);
        const r2 = await run(two, [x, g, b], s);
        ["y", "mean", "rstd"].forEach((what, i) => {
          assertClose(r1[i], want[i], 1e-5, 1e-5, `${name} ${what}`);
          assert.ok(sameBits(r1[i], r2[i]), `${name} ${what}: 1 and 2 threads differ`);
        });
      });
    }
    for (const d of [one, two]) assert.equal(d.memory().liveBytes, 0);
  });
});
