import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { encodeSafetensors } from "../../io/safetensors.ts";
import { loadCheckpoint, saveCheckpoint, TREE_METADATA_KEY } from "../../io/checkpoint.ts";
import { fromTypedArray } from "../../ops/creation.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";
import { assertSameTree, bytesOf, hostTensors, readHeader, trainingState } from "./fixtures.ts";

Deno.test("checkpoints", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "ckpt_test_" });
  const path = `${dir}/state.safetensors`;
  const dispose = (tree: unknown) => T.treeTensors(tree).forEach((x) => x.dispose());
  const listDir = () => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

  for (const device of testDevices()) {
    await t.step(
      `round trip is bit-exact on ${device}, to both devices`,
      () =>
        noLeaks(async () => {
          const state = trainingState(device);
          await saveCheckpoint(path, state, { metadata: { config: '{"dModel":8}' } });
          for (const target of testDevices()) {
            const { tree, metadata } = await loadCheckpoint(path, { device: target });
            assert.deepEqual(metadata, { config: '{"dModel":8}' });
            await assertSameTree(tree, state);
            for (const x of T.treeTensors(tree)) assert.equal(x.device, target);
            dispose(tree);
          }
          const template = trainingState(device);
          const like = await loadCheckpoint(path, { like: template, device });
          await assertSameTree(like.tree, state);
          dispose(like.tree);
          dispose(template);
          dispose(state);
          assert.deepEqual(listDir(), ["state.safetensors"], "no temporary files remain");
        }),
    );
  }

  for (const device of testDevices()) {
    await t.step(
      `special values (-0, NaN payloads, empties) survive on ${device}`,
      () =>
        noLeaks(async () => {
          const host = hostTensors();
          const tree = Object.fromEntries(host.map(([name, h]) => [
            name.replace(".", "_"),
            h.data.length
              ? fromTypedArray(h.data, h.shape, h.dtype, device)
              : T.zeros(h.shape, { dtype: h.dtype, device }),
          ]));
          await saveCheckpoint(`${dir}/special.safetensors`, tree);
          dispose(tree);
          for (const target of testDevices()) {
            const loaded = await loadCheckpoint<Record<string, T.Tensor>>(
              `${dir}/special.safetensors`,
              { device: target },
            );
            for (const [name, h] of host) {
              const x = loaded.tree[name.replace(".", "_")];
              assert.equal(x.dtype, h.dtype);
              assert.deepEqual(x.shape, h.shape);
              assert.deepEqual(
                bytesOf(await x.data()),
                bytesOf(h.data),
                `${name} ${device} -> ${target}`,
              );
            }
            dispose(loaded.tree);
          }
          Deno.removeSync(`${dir}/special.safetensors`);
        }),
    );
  }

  for (const device of testDevices()) {
    await t.step(
      `resuming from a checkpoint reproduces the losses on ${device}`,
      () =>
        noLeaks(async () => {
          const r = rng(3);
          const x = T.tensor(randomArray(r, 8 * 3), { shape: [8, 3], device });
          const y = T.tensor(randomArray(r, 8 * 2), { shape: [8, 2], device });
          const opt = T.optim.adam(0.05);
          const lossFn = (p: { w: T.Tensor; b: T.Tensor }) =>
            T.mean(T.square(T.sub(T.add(T.matmul(x, p.w), p.b), y)));
          type State = { params: { w: T.Tensor; b: T.Tensor }; opt: T.optim.AdamChainState };
          const step = async (s: State): Promise<[State, number]> => {
            const [next, loss] = T.scope(() => {
              const [value, grads] = T.valueAndGrad(lossFn)(s.params);
              const [updates, o] = opt.update(grads, s.opt, s.params);
              return [{ params: T.optim.applyUpdates(s.params, updates), opt: o }, value] as const;
            });
            dispose(s);
            const v = (await loss.data())[0];
            loss.dispose();
            return [next, v];
          };
          const init = (): State => {
            const params = {
              w: T.tensor(randomArray(rng(5), 6), { shape: [3, 2], device }),
              b: T.zeros([2], { device }),
            };
            return { params, opt: opt.init(params) };
          };
          let a = init();
          const straight: number[] = [];
          for (let i = 0; i < 5; i++) {
            let v;
            [a, v] = await step(a);
            straight.push(v);
          }
          dispose(a);
          let b = init();
          const resumed: number[] = [];
          for (let i = 0; i < 2; i++) {
            let v;
            [b, v] = await step(b);
            resumed.push(v);
          }
          await saveCheckpoint(`${dir}/resume.safetensors`, b);
          const template = b;
          const loaded = await loadCheckpoint(`${dir}/resume.safetensors`, {
            like: template,
            device,
          });
          dispose(template);
          b = { ...loaded.tree, opt: await T.optim.restoreSteps(loaded.tree.opt) };
          for (let i = 0; i < 3; i++) {
            let v;
            [b, v] = await step(b);
            resumed.push(v);
          }
          dispose(b);
          assert.deepEqual(resumed, straight);
          x.dispose();
          y.dispose();
          Deno.removeSync(`${dir}/resume.safetensors`);
        }),
    );
  }

  await t.step("the file is plain safetensors with dotted names", () => {
    const [, header] = readHeader(Deno.readFileSync(path));
    const names = Object.keys(header).filter((k) => k !== "__metadata__").sort();
    assert.deepEqual(names, [
      "extra.ids",
      "extra.mask",
      "opt.count",
      "params.embed",
      "params.layers.0.b",
      "params.layers.0.w",
      "params.layers.1.w",
    ]);
    assert.ok(TREE_METADATA_KEY in (header.__metadata__ as object));
  });

  await t.step("a template mismatch names the tensor and both shapes", () =>
    noLeaks(async () => {
      const before = Deno.readFileSync(path);
      const like = trainingState("cpu-reference");
      like.params.layers[1].w.dispose();
      like.params.layers[1].w = T.zeros([3, 3]);
      await assert.rejects(
        () => loadCheckpoint(path, { like }),
        /tensor "params\.layers\.1\.w": expected f32\[3,3\], found f32\[2,3\]/,
      );
      const opt = like.opt;
      (like as Record<string, unknown>).opt = { step: 0 };
      await assert.rejects(
        () => loadCheckpoint(path, { like }),
        /tensor "opt\.count" \(i32\[\]\) is not in the template/,
      );
      (like as Record<string, unknown>).opt = { ...opt, count2: opt.count };
      await assert.rejects(
        () => loadCheckpoint(path, { like }),
        /tensor "opt\.count2" is missing \(expected i32\[\]\)/,
      );
      dispose(like);
      assert.deepEqual(Deno.readFileSync(path), before, "loading changes nothing");
    }));

  await t.step("truncated and corrupt files are rejected", () =>
    noLeaks(async () => {
      const good = Deno.readFileSync(path);
      const bad = `${dir}/bad.safetensors`;
      Deno.writeFileSync(bad, good.subarray(0, good.length - 2));
      await assert.rejects(
        () => loadCheckpoint(bad),
        /bad\.safetensors: truncated: tensor "extra\.ids" \(U32\[2\]\)/,
      );
      Deno.writeFileSync(bad, good.subarray(0, 100));
      await assert.rejects(
        () => loadCheckpoint(bad),
        /header length \d+ does not fit in 100 bytes/,
      );
      await assert.rejects(
        () => loadCheckpoint(`${dir}/nope`),
        /loadCheckpoint: cannot read .*nope/,
      );
      Deno.removeSync(bad);
    }));

  await t.step(
    "a failure mid-write leaves the old file intact and no temporary file",
    () =>
      noLeaks(async () => {
        const before = Deno.readFileSync(path);
        const state = trainingState("cpu-reference");
        state.extra.ids.dispose(); // read after the header and earlier tensors were written
        await assert.rejects(
          () => saveCheckpoint(path, state),
          /cannot read tensor "extra\.ids" \(u32\[2\]\): .*disposed/,
        );
        assert.deepEqual(Deno.readFileSync(path), before);
        assert.deepEqual(listDir(), ["state.safetensors"]);
        await assert.rejects(() => saveCheckpoint(path, { f: () => 1 }), /leaf "f" is a function/);
        await assert.rejects(
          () => saveCheckpoint(path, { a: 1 }, { metadata: { [TREE_METADATA_KEY]: "" } }),
          /reserved/,
        );
        await assert.rejects(
          () => saveCheckpoint(`${dir}/missing/x.safetensors`, state),
          Deno.errors.NotFound,
        );
        assert.deepEqual(Deno.readFileSync(path), before);
        assert.deepEqual(listDir(), ["state.safetensors"]);
        dispose(state);
      }),
  );

  await t.step("files from other tools load as nested objects", () =>
    noLeaks(async () => {
      const foreign = `${dir}/foreign.safetensors`;
      Deno.writeFileSync(
        foreign,
        encodeSafetensors([
          ["model.w", { dtype: "f32", shape: [2], data: new Float32Array([1, 2]) }],
          ["model.b", { dtype: "i32", shape: [1], data: new Int32Array([3]) }],
          ["step", { dtype: "i32", shape: [], data: new Int32Array([9]) }],
        ]),
      );
      const { tree } = await loadCheckpoint<
        { model: { w: T.Tensor; b: T.Tensor }; step: T.Tensor }
      >(foreign);
      assert.deepEqual(await tree.model.w.array(), [1, 2]);
      assert.deepEqual(await tree.model.b.array(), [3]);
      assert.deepEqual(await tree.step.array(), 9);
      dispose(tree);
      Deno.removeSync(foreign);
    }));

  await Deno.remove(dir, { recursive: true });
});
