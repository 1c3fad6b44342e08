import * as T from "../../../mod.ts";
import { lookAround } from "../../../nn/attention/chunks.ts";
import { chunkAttention } from "../../../nn/attention/chunk_attention.ts";
import { valueAndGrad } from "../../../autodiff/mod.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";

Deno.test("chunkAttention reads the look-around in place, equal to materialising it", async (t) => {
  const [b, h, nc, c, dk] = [2, 1, 3, 4, 4];
  const cases = [
    { offsets: [-1, 0], causal: true, selfMask: true, valid: true, bias: false },
    { offsets: [0], causal: false, selfMask: false, valid: false, bias: true },
    // Three chunks: -2 and 1 name the same chunk, which then fills two blocks of slots.
    { offsets: [-2, 0, 1], causal: false, selfMask: true, valid: true, bias: true },
  ];
  for (const device of testDevices()) {
    for (const cs of cases) {
      await t.step(`${device} ${JSON.stringify(cs)}`, () =>
        noLeaks(async () => {
          const rand = rng(23);
          const nk = cs.offsets.length * c;
          const data = [0, 1, 2].map(() => randomArray(rand, b * h * nc * c * dk, -2, 2));
          const validA = Array.from({ length: b * h * nc * nk }, () => rand() < 0.8);
          const biasA = randomArray(rand, b * h * nc * c * nk);
          const wA = randomArray(rand, b * h * nc * c * dk);
          const run = (mode: "materialised" | "composed" | "fused") =>
            T.scope(() => {
              const [q, k, v] = data.map((d) => T.tensor(d, { shape: [b, h, nc, c, dk], device }));
              const pos = T.reshape(T.arange(0, nc * c, 1, { dtype: "i32", device }), [nc, c]);
              const kpos = lookAround(pos, 0, cs.offsets);
              const kvalid = cs.valid
                ? T.reshape(T.tensor(validA, { device }), [b, h, nc, nk])
                : null;
              const bias = cs.bias ? T.tensor(biasA, { shape: [b, h, nc, c, nk], device }) : null;
              const w = T.tensor(wA, { shape: [b, h, nc, c, dk], device });
              const f = (qq: T.Tensor, kk: T.Tensor, vv: T.Tensor) => {
                const masks = {
                  qpos: pos,
                  kpos,
                  kvalid,
                  bias,
                  causal: cs.causal,
                  selfMask: cs.selfMask,
                };
                const { o, lse } = mode === "materialised"
                  ? chunkAttention(
                    qq,
                    lookAround(kk, 2, cs.offsets),
                    lookAround(vv, 2, cs.offsets),
                    {
                      ...masks,
                      impl: "composed",
                    },
                  )
                  : chunkAttention(qq, kk, vv, { ...masks, impl: mode, lookAround: cs.offsets });
                return T.add(T.sum(T.mul(o, w)), T.sum(lse));
              };
              const [val, g] = valueAndGrad(f, { argnums: [0, 1, 2] })(q, k, v);
              return [val, ...g];
            });
          const want = run("materialised");
          for (const mode of ["composed", "fused"] as const) {
            const got = run(mode);
            for (let i = 0; i < want.length; i++) {
              await T.assertAllClose(got[i], want[i], {
                rtol: 1e-4,
                atol: 1e-5,
                message: `${mode} output ${i} (value, dq, dk, dv)`,
              });
            }
            for (const x of got) x.dispose();
          }
          for (const x of want) x.dispose();
        }));
    }
  }
});
