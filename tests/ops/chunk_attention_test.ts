import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { fusedChunkAttention } from "../../ops/chunk_attention.ts";
import { noLeaks, testDevices } from "../util.ts";

Deno.test("fused chunk attention: first order works, second order is refused", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(() => {
          const pos = T.tensor(new Int32Array([0, 1]), { shape: [1, 2], device });
          const flags = { causal: true, selfMask: false, maskValue: -1e9, selfValue: -1e5 };
          const f = (q: T.Tensor) => T.sum(fusedChunkAttention(q, q, q, pos, pos, null, flags)[0]);
          const q = T.tensor([[[0.1, 0.2], [0.3, -0.1]]], { device });
          assert.deepEqual((T.grad(f)(q) as T.Tensor).shape, [1, 2, 2]);
          // The same refusal as the block-sparse kernel's (refuseSecondOrder).
          assert.throws(() => T.grad((x: T.Tensor) => T.sum(T.grad(f)(x) as T.Tensor))(q), {
            name: "TypeError",
            message: /chunkAttention: second-order gradients are not supported \(the backward pass/,
          });
        })
      ));
  }
});
