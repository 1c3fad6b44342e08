import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type HostTensor,
  parseSafetensorsHeader,
} from "../../io/safetensors.ts";
import { loadCheckpoint, saveCheckpoint, TREE_METADATA_KEY } from "../../io/checkpoint.ts";
import { fromTypedArray } from "../../ops/creation.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";

const bytesOf = (a: T.TypedArray) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Host tensors of every dtype with the awkward values: -0, NaN payloads, extremes, empties. */
function hostTensors(): [string, HostTensor][] {
  const f = new Float32Array(8);
  const bits = new Uint32Array(f.buffer);
  bits.set([0x80000000, 0x7fc00001, 0xffc12345, 0x7f800001, 0x7f800000, 0xff800000, 1, 0x3f800000]);
  return [
    ["f.special", { dtype: "f32", shape: [2, 4], data: f }],
    ["f.scalar", { dtype: "f32", shape: [], data: new Float32Array([-1.5]) }],
    ["f.empty", { dtype: "f32", shape: [2, 0], data: new Float32Array(0) }],
    ["i", { dtype: "i32", shape: [3], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1, -1]) }],
    ["u", { dtype: "u32", shape: [1, 2], data: new Uint32Array([0, 2 ** 32 - 1]) }],
    ["b", { dtype: "bool", shape: [5], data: new Uint8Array([1, 0, 0, 1, 1]) }],
    ["b.empty", { dtype: "bool", shape: [0], data: new Uint8Array(0) }],
  ];
}

function readHeader(bytes: Uint8Array): [number, Record<string, unknown>] {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return [n, JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)))];
}

Deno.test("safetensors encode/decode", async (t) => {
  await t.step("round trip is bit-exact for every dtype", () => {
    const tensors = hostTensors();
    const out = decodeSafetensors(encodeSafetensors(tensors, { a: "1", b: "{}" }));
    assert.deepEqual(out.metadata, { a: "1", b: "{}" });
    assert.deepEqual([...out.tensors.keys()], tensors.map(([n]) => n));
    for (const [name, want] of tensors) {
      const got = out.tensors.get(name)!;
      assert.equal(got.dtype, want.dtype, name);
      assert.deepEqual(got.shape, want.shape, name);
      assert.equal(got.data.constructor, want.data.constructor, name);
      assert.deepEqual(bytesOf(got.data), bytesOf(want.data), name);
    }
  });

  await t.step("the file follows the format's rules", () => {
    const tensors = hostTensors();
    const bytes = encodeSafetensors(tensors, { note: "x" });
    const [n, header] = readHeader(bytes);
    assert.equal((8 + n) % 8, 0, "data starts 8-byte aligned");
    assert.equal(bytes[8], "{".charCodeAt(0));
    assert.deepEqual(header.__metadata__, { note: "x" });
    const names = { f32: "F32", i32: "I32", u32: "U32", bool: "BOOL" };
    let at = 0;
    for (const [name, want] of tensors) {
      const e = header[name] as { dtype: string; shape: number[]; data_offsets: number[] };
      assert.equal(e.dtype, names[want.dtype]);
      assert.deepEqual(e.shape, want.shape);
      assert.deepEqual(e.data_offsets, [at, at + want.data.byteLength], name);
      const raw = bytes.subarray(8 + n + at, 8 + n + at + want.data.byteLength);
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      for (let i = 0; i < want.data.length; i++) {
        const v = want.dtype === "bool"
          ? dv.getUint8(i)
          : want.dtype === "i32"
          ? dv.getInt32(4 * i, true)
          : dv.getUint32(4 * i, true);
        const expected = want.dtype === "f32"
          ? new Uint32Array(want.data.buffer, want.data.byteOffset)[i]
          : want.data[i];
        assert.equal(v, expected, `${name}[${i}] is little-endian`);
      }
      at += want.data.byteLength;
    }
    assert.equal(bytes.length, 8 + n + at, "no bytes after the last tensor");
  });

  await t.step("bad files are rejected with clear errors", () => {
    const good = encodeSafetensors(hostTensors());
    const [n] = readHeader(good);
    assert.throws(() => decodeSafetensors(good.subarray(0, 5)), /5 bytes.*8-byte header length/);
    assert.throws(() => decodeSafetensors(good.subarray(0, 20)), /header length \d+ does not fit/);
    assert.throws(
      () => decodeSafetensors(good.subarray(0, good.length - 3)),
      /truncated: tensor "b" \(BOOL\[5\]\) ends at byte/,
    );
    assert.throws(
      () => decodeSafetensors(good.subarray(0, 8 + n + 4)),
      /truncated: tensor "f.special"/,
    );
    const extra = new Uint8Array(good.length + 2);
    extra.set(good);
    assert.throws(() => decodeSafetensors(extra), /2 bytes follow the last tensor/);
    const make = (json: string) => {
      const text = new TextEncoder().encode(json);
      const out = new Uint8Array(8 + text.length + 8);
      new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
      out.set(text, 8);
      return out;
    };
    assert.throws(() => decodeSafetensors(make("[1]")), /does not start with '\{'/);
    assert.throws(() => decodeSafetensors(make("{oops")), /not valid UTF-8 JSON/);
    const entry = (dtype: string, shape: number[], offs: number[]) =>
      JSON.stringify({ x: { dtype, shape, data_offsets: offs } });
    assert.throws(
      () => decodeSafetensors(make(entry("Q8", [2], [0, 8]))),
      /tensor "x": unknown dtype "Q8"/,
    );
    assert.throws(
      () => decodeSafetensors(make(entry("F32", [3], [0, 8]))),
      /tensor "x": F32\[3\] needs 12 bytes but data_offsets \[0,8\] span 8/,
    );
    assert.throws(
      () => decodeSafetensors(make(entry("F32", [1], [4, 8]))),
      /start at 4 .* \(a hole\)/,
    );
    assert.throws(() => decodeSafetensors(make(entry("F32", [-1], [0, 8]))), /shape \[-1\]/);
    assert.throws(
      () => decodeSafetensors(make(entry("F64", [1], [0, 8]))),
      /dtype F64, which this library/,
    );
    const meta = JSON.stringify({ __metadata__: { k: 1 } });
    assert.throws(
      () => decodeSafetensors(make(meta).subarray(0, 8 + meta.length)),
      /value of "k" is not a string/,
    );
    assert.throws(
      () => encodeSafetensors({ w: { dtype: "f32", shape: [3], data: new Float32Array(2) } }),
      /needs a Float32Array of 3 values, got a Float32Array of 2/,
    );
    const h = parseSafetensorsHeader(make(entry("F64", [1], [0, 8])));
    assert.equal(h.entries[0].dtype, null, "foreign dtypes still parse");
  });
});

/** A training-state-shaped tree on `device`. */
function trainingState(device: T.DeviceName) {
  const r = rng(7);
  const params = {
    embed: T.tensor(randomArray(r, 12), { shape: [4, 3], device }),
    layers: [
      { w: T.tensor(randomArray(r, 6), { shape: [3, 2], device }), b: T.zeros([0], { device }) },
      { w: T.tensor(randomArray(r, 6), { shape: [2, 3], device }), b: null },
    ],
  };
  const opt = { count: T.full([], 5, { dtype: "i32", device }), step: 5 };
  const extra = {
    mask: T.tensor([true, false, true], { device }),
    ids: T.tensor(new Uint32Array([7, 2 ** 32 - 1]), { device }),
    note: "hi",
    flags: [true, undefined, -0, NaN, Infinity],
  };
  return { params, opt, extra };
}

async function assertSameTree(got: unknown, want: unknown, path = "") {
  if (want instanceof T.Tensor) {
    assert.ok(got instanceof T.Tensor, `${path} is a tensor`);
    assert.equal(got.dtype, want.dtype, path);
    assert.deepEqual(got.shape, want.shape, path);
    assert.deepEqual(bytesOf(await got.data()), bytesOf(await want.data()), path);
  } else if (want !== null && typeof want === "object") {
    assert.deepEqual(Object.keys(got as object), Object.keys(want), path);
    for (const k of Object.keys(want)) {
      await assertSameTree(
        (got as Record<string, unknown>)[k],
        (want as Record<string, unknown>)[k],
        `${path}.${k}`,
      );
    }
  } else assert.ok(Object.is(got, want), `${path}: ${String(got)} vs ${String(want)}`);
}

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
      const like = trainingState("cpu");
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
        const state = trainingState("cpu");
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
