/**
 * `chunkAttention` (its custom backward and the fused kernels) against the plain composition of
 * `attendChunks`, values and gradients.
 */
import * as T from "../../../mod.ts";
import { attendChunks } from "../../../nn/attention/core.ts";
import { chunkAttention } from "../../../nn/attention/chunk_attention.ts";
import { valueAndGrad } from "../../../autodiff/mod.ts";
import * as random from "../../../ops/random.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";

Deno.test("chunkAttention (custom backward and fused kernels) equals the plain composition", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(17);
        const [b, h, nc, nq, nk, dk] = [2, 2, 3, 3, 6, 4];
        for (
          const cs of [
            { causal: true, selfMask: true, valid: true, bias: false, rate: 0, p: 0.7 },
            { causal: false, selfMask: false, valid: true, bias: true, rate: 0, p: 0.7 },
            { causal: true, selfMask: false, valid: false, bias: false, rate: 0.3, p: 0.7 },
            // Mostly masked keys: rows with only the self key, or no key at all.
            { causal: true, selfMask: true, valid: true, bias: false, rate: 0, p: 0.1 },
            { causal: false, selfMask: false, valid: true, bias: true, rate: 0, p: 0.1 },
          ]
        ) {
          const qposA = Int32Array.from({ length: b * h * nc * nq }, () => Math.floor(rand() * 6));
          const kposA = Int32Array.from({ length: b * h * nc * nk }, () => Math.floor(rand() * 6));
          const validA = Array.from({ length: b * h * nc * nk }, () => rand() < cs.p);
          const biasA = randomArray(rand, b * h * nc * nq * nk);
          const data = [nq, nk, nk].map((n) => randomArray(rand, b * h * nc * n * dk, -2, 2));
          const wA = [randomArray(rand, b * h * nc * nq * dk), randomArray(rand, b * h * nc * nq)];
          const run = (impl: "plain" | "composed" | "fused") =>
            T.scope(() => {
              const qpos = T.tensor(qposA, { shape: [b, h, nc, nq], device });
              const kpos = T.tensor(kposA, { shape: [b, h, nc, nk], device });
              const kvalid = cs.valid
                ? T.reshape(T.tensor(validA, { device }), [b, h, nc, nk])
                : null;
              const bias = cs.bias ? T.tensor(biasA, { shape: [b, h, nc, nq, nk], device }) : null;
              const key = random.key(4, { device });
              const dropout = { rate: cs.rate, key };
              const [qs, ks, vs] = data.map((d, i) =>
                T.tensor(d, { shape: [b, h, nc, [nq, nk, nk][i], dk], device })
              );
              const [w0, w1] = [
                T.tensor(wA[0], { shape: [b, h, nc, nq, dk], device }),
                T.tensor(wA[1], { shape: [b, h, nc, nq], device }),
              ];
              const f = (q: T.Tensor, k: T.Tensor, v: T.Tensor) => {
                let o: T.Tensor, lse: T.Tensor;
                if (impl === "plain") {
                  const qp = T.reshape(qpos, [b, h, nc, nq, 1]);
                  const kp = T.reshape(kpos, [b, h, nc, 1, nk]);
                  let keep: T.Tensor | null = cs.causal ? T.greaterEqual(qp, kp) : null;
                  if (kvalid) {
                    const kv = T.reshape(kvalid, [b, h, nc, 1, nk]);
                    keep = keep ? T.logicalAnd(keep, kv) : kv;
                  }
                  const self = cs.selfMask ? T.equal(qp, kp) : null;
                  ({ o, lse } = attendChunks(q, k, v, {
                    keep,
                    self,
                    bias,
                    withLse: true,
                    dropout,
                  }) as { o: T.Tensor; lse: T.Tensor });
                } else {
                  ({ o, lse } = chunkAttention(q, k, v, {
                    qpos,
                    kpos,
                    kvalid,
                    causal: cs.causal,
                    selfMask: cs.selfMask,
                    bias,
                    dropout,
                    impl,
                  }));
                }
                return T.add(T.sum(T.mul(o, w0)), T.sum(T.mul(lse, w1)));
              };
              const [v, g] = valueAndGrad(f, { argnums: [0, 1, 2] })(qs, ks, vs);
              return [v, ...g];
            });
          const a = run("plain");
          for (const impl of cs.rate > 0 ? ["composed"] as const : ["composed", "fused"] as const) {
            const c = run(impl);
            for (let i = 0; i < a.length; i++) {
              const message = `${impl} ${JSON.stringify(cs)} output ${i}`;
              await T.assertAllClose(c[i], a[i], { rtol: 1e-4, atol: 1e-5, message });
            }
            for (const x of c) x.dispose();
          }
          for (const x of a) x.dispose();
        }
      }));
  }
});
