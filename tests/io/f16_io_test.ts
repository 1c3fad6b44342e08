/** f16 tensors through safetensors and checkpoints: saved and loaded as f16, or widened on request. */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { noLeaks } from "../util.ts";

Deno.test("safetensors and checkpoints keep f16 as f16", async () => {
  const data = Float16Array.of(1, -0.5, 65504, 2 ** -24, NaN);
  const bytes = T.encodeSafetensors({ w: { dtype: "f16", shape: [5], data } });
  const { tensors } = T.decodeSafetensors(bytes);
  const w = tensors.get("w")!;
  assert.equal(w.dtype, "f16");
  assert.ok(w.data instanceof Float16Array);
  assert.deepEqual([...w.data], [...data]);
  const wide = T.decodeSafetensors(bytes, { castTo: "f32" }).tensors.get("w")!;
  assert.equal(wide.dtype, "f32");
  assert.deepEqual([...wide.data], [...data]);

  await noLeaks(async () => {
    const path = await Deno.makeTempFile({ suffix: ".safetensors" });
    try {
      using t = T.tensor([1.5, 2, 3], { dtype: "f16", device: "cpu-reference" });
      await T.saveCheckpoint(path, { t });
      const { tree } = await T.loadCheckpoint<{ t: Tensor }>(path, { device: "cpu-reference" });
      assert.equal(tree.t.dtype, "f16");
      assert.deepEqual([...await tree.t.data()], [1.5, 2, 3]);
      tree.t.dispose();
    } finally {
      await Deno.remove(path);
    }
  });
});
