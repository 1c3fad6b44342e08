import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import {
  loadHuggingFaceReformer,
  reformerConfigFromHF,
  saveHuggingFaceReformer,
} from "../../io/huggingface_reformer.ts";
import { noLeaks, testDevices } from "../util.ts";
import { disposeTree } from "../nn/models/lm_util.ts";

const FIXTURES = new URL("../fixtures/hf_reformer/", import.meta.url).pathname;
const NAMES = [
  "lsh_local_axial_relu_dec",
  "lsh_factored_gelu_enc",
  "local_lsh_gelunew_enc",
  "mixed_headsize_eps_dec",
  "padded_len_dec",
  "single_chunk_dec",
];

/** tokens, logits and `rotations.LAYER` of a fixture's expected.safetensors (or ours). */
function readExpected(path: string): Map<string, T.HostTensor> {
  return T.decodeSafetensors(Deno.readFileSync(path)).tensors;
}

/** Per-layer rotations for `apply` from a map of `rotations.N` entries. */
function rotationsOf(
  exp: Map<string, T.HostTensor>,
  layers: number,
  device: T.DeviceName,
): (T.Tensor | undefined)[] {
  return Array.from({ length: layers }, (_, i) => {
    const r = exp.get(`rotations.${i}`);
    return r ? T.tensor(r.data as Float32Array, { shape: [...r.shape], device }) : undefined;
  });
}

/** `max |a - b| / max |b|`. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, s = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / s;
}

Deno.test("loadHuggingFaceReformer: our logits equal HF's for every fixture", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      for (const name of NAMES) {
        await noLeaks(async () => {
          const dir = FIXTURES + name;
          const { config, params } = await loadHuggingFaceReformer(dir, { device });
          const exp = readExpected(`${dir}/expected.safetensors`);
          const tok = exp.get("tokens")!;
          const tokens = T.tensor(tok.data as Int32Array, {
            shape: [...tok.shape],
            dtype: "i32",
            device,
          });
          const rotations = rotationsOf(exp, config.layers, device);
          const logits = T.nn.reformerLM(config).apply(params, tokens, { rotations });
          const want = exp.get("logits")!;
          assert.deepEqual(logits.shape, want.shape);
          const rel = relDiff(await logits.data() as Float32Array, want.data as Float32Array);
          assert.ok(rel < 1e-4, `${name} on ${device}: relative difference ${rel}`);
          for (const x of [logits, tokens, ...rotations]) x?.dispose();
          disposeTree(params);
        });
      }
    });
  }
});

Deno.test("saveHuggingFaceReformer: save then load round-trips config and params exactly", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { config, params } = await loadHuggingFaceReformer(FIXTURES + "mixed_headsize_eps_dec");
    await saveHuggingFaceReformer(dir, config, params);
    const again = await loadHuggingFaceReformer(dir);
    assert.deepEqual(again.config, config);
    const a = T.treeTensors(params), b = T.treeTensors(again.params);
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++) {
      assert.deepEqual(a[i].shape, b[i].shape);
      assert.deepEqual(await a[i].data(), await b[i].data());
    }
    // A model of our own, non-axial, encoder, gelu_exact: config survives the trip too.
    const own: T.nn.ReformerLMConfig = {
      vocab: 10,
      dModel: 6,
      dFF: 8,
      heads: 2,
      dHead: 4,
      layers: 2,
      attention: ["local", "lsh"],
      causal: false,
      localWrap: true,
      activation: "gelu_exact",
      nBuckets: [2, 4],
      chunkLen: 4,
      localChunkLen: 2,
      maxLen: 12,
      layerNormEps: 1e-5,
    };
    const p2 = T.nn.reformerLM(own).init(T.random.key(3));
    await saveHuggingFaceReformer(`${dir}/own`, own, p2);
    const back = await loadHuggingFaceReformer(`${dir}/own`);
    const tokens = T.tensor([[1, 2, 3, 4, 5, 6, 7, 8]], { dtype: "i32" });
    const want = T.nn.reformerLM(own).apply(p2, tokens, { key: T.random.key(1) });
    const got = T.nn.reformerLM(back.config).apply(back.params, tokens, { key: T.random.key(1) });
    assert.deepEqual(await got.data(), await want.data());
    assert.equal(back.config.activation, "gelu_exact");
    assert.equal(back.config.causal, false);
    for (const x of [p2, back.params, params, again.params, tokens, want, got]) disposeTree(x);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadHuggingFaceReformer: mismatched and unsupported files fail clearly", async () => {
  const src = FIXTURES + "lsh_local_axial_relu_dec";
  const hf = JSON.parse(Deno.readTextFileSync(`${src}/config.json`));
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ attn_layers: ["lsh", "full"] }, /attn_layers = \["lsh","full"\]/],
    [{ hidden_act: "silu" }, /hidden_act = "silu": supported: relu, gelu/],
    [{ axial_pos_shape: [2, 4, 4] }, /axial_pos_shape = \[2,4,4\]: HF's axial positions take/],
    [{ axial_pos_embds_dim: [4, 5] }, /axial_pos_embds_dim = \[4,5\]: must be two widths/],
    [{ num_buckets: 3 }, /num_buckets = 3: must be an even integer/],
    [{ tie_word_embeddings: true }, /tie_word_embeddings/],
  ];
  for (const [change, msg] of cases) {
    assert.throws(() => reformerConfigFromHF({ ...hf, ...change }), msg);
  }
  const dir = await Deno.makeTempDir();
  try {
    const model = Deno.readFileSync(`${src}/model.safetensors`);
    // The config says 3 layers, the file holds 2: the third layer's tensors are missing.
    Deno.writeTextFileSync(
      `${dir}/config.json`,
      JSON.stringify({ ...hf, attn_layers: ["lsh", "local", "lsh"] }),
    );
    Deno.writeFileSync(`${dir}/model.safetensors`, model);
    await assert.rejects(
      loadHuggingFaceReformer(dir),
      /missing: reformer\.encoder\.layers\.2\.attention\.layer_norm\.weight/,
    );
    // One layer: the second layer's tensors are unexpected.
    Deno.writeTextFileSync(`${dir}/config.json`, JSON.stringify({ ...hf, attn_layers: ["lsh"] }));
    await assert.rejects(loadHuggingFaceReformer(dir), /unexpected: reformer\.encoder\.layers\.1/);
    // Wrong width: a shape mismatch named with both shapes.
    Deno.writeTextFileSync(
      `${dir}/config.json`,
      JSON.stringify({ ...hf, feed_forward_size: 12 }),
    );
    await assert.rejects(
      loadHuggingFaceReformer(dir),
      /layers\.0\.feed_forward\.dense\.dense\.weight is \[16,8\] but config\.json implies \[12,8\]/,
    );
    Deno.writeFileSync(`${dir}/model.safetensors`, model.subarray(0, model.length - 4));
    Deno.writeTextFileSync(`${dir}/config.json`, JSON.stringify(hf));
    await assert.rejects(loadHuggingFaceReformer(dir), /truncated/);
    Deno.removeSync(`${dir}/model.safetensors`);
    await assert.rejects(loadHuggingFaceReformer(dir), /cannot read .*model\.safetensors/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveHuggingFaceReformer: refuses models HF cannot express, by name", async () => {
  const base: T.nn.ReformerLMConfig = {
    vocab: 8,
    dModel: 4,
    dFF: 8,
    heads: 1,
    layers: 1,
    maxLen: 8,
  };
  const p = T.nn.reformerLM({ ...base, attention: "full" }).init(T.random.key(0));
  await assert.rejects(
    saveHuggingFaceReformer("/nonexistent", { ...base, attention: "full" }, p),
    /config\.attention = "full": HF has no "full" attention/,
  );
  await assert.rejects(
    saveHuggingFaceReformer("/nonexistent", { ...base, attention: "local", causal: false }, p),
    /localWrap/,
  );
  await assert.rejects(
    saveHuggingFaceReformer("/nonexistent", { ...base, attention: "local" }, p),
    /params\.blocks\.0\.f\.attn\.wq must be f32 \[4,4\]/,
  );
  disposeTree(p);
});

Deno.test("reformerDecoder: cached LSH decoding equals HF's past_buckets_states generation", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, async () => {
      const decodes = [
        ["lsh_local_axial_relu_dec", [3, 6]],
        ["mixed_headsize_eps_dec", [3, 8]],
        ["padded_len_dec", [5, 13]],
      ] as const;
      for (const [name, prompts] of decodes) {
        await noLeaks(async () => {
          const dir = FIXTURES + name;
          const { config, params } = await loadHuggingFaceReformer(dir, { device });
          const exp = readExpected(`${dir}/expected.safetensors`);
          const r = exp.get("decode.rotations")!;
          const rot = T.tensor(r.data as Float32Array, { shape: [...r.shape], device });
          const model = T.nn.reformerLM(config);
          const rotations = model.types.map((ty) => (ty === "lsh" ? rot : undefined));
          const dec = T.nn.reformerDecoder(config, params, { rotations });
          const tok = exp.get("tokens")!;
          const ids = Array.from(tok.data as Int32Array).slice(0, tok.shape[1]);
          for (const p of prompts) {
            const want = exp.get(`decode.p${p}`)!;
            const n = p + want.shape[0] - 1;
            const prompt = T.tensor(Int32Array.from(ids.slice(0, p)), {
              shape: [1, p],
              dtype: "i32",
              device,
            });
            let [logits, state] = dec.prefill(prompt);
            prompt.dispose();
            const vocab = config.vocab;
            for (let s = p;; s++) {
              const row = (want.data as Float32Array).subarray(
                (s - p) * vocab,
                (s - p + 1) * vocab,
              );
              const rel = relDiff(await logits.data() as Float32Array, row);
              assert.ok(rel < 1e-4, `${name} prompt ${p}, position ${s - 1}: relative ${rel}`);
              logits.dispose();
              if (s === n) break;
              const [l, st] = dec.step(state, ids[s]);
              state.dispose();
              [logits, state] = [l, st];
            }
            state.dispose();
          }
          rot.dispose();
          disposeTree(params);
        });
      }
    });
  }
});

/** F16 bit patterns and their values: one, -2, 1/3 rounded, the least subnormal, the largest. */
const F16: [number, number][] = [
  [0x3c00, 1],
  [0xc000, -2],
  [0x3555, 0.333251953125],
  [0x0001, 2 ** -24],
  [0x7bff, 65504],
];

/**
 * The fixture's model.safetensors with every tensor stored as BF16 (the upper 16 bits of each
 * value) or as F16 (element `i` holding pattern `F16[i % 5]`).
 */
function halfFile(bytes: Uint8Array, format: "BF16" | "F16"): Uint8Array {
  const { entries, dataStart } = T.parseSafetensorsHeader(bytes);
  const header: Record<string, unknown> = {};
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const e of entries) {
    const src = new DataView(bytes.buffer, bytes.byteOffset + dataStart + e.offsets[0]);
    const n = (e.offsets[1] - e.offsets[0]) / 4;
    const out = new Uint8Array(2 * n), dv = new DataView(out.buffer);
    for (let i = 0; i < n; i++) {
      const bits = src.getUint32(4 * i, true);
      dv.setUint16(2 * i, format === "BF16" ? bits >>> 16 : F16[i % F16.length][0], true);
    }
    header[e.name] = { dtype: format, shape: e.shape, data_offsets: [at, at + 2 * n] };
    parts.push(out);
    at += 2 * n;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const file = new Uint8Array(8 + json.length + at);
  new DataView(file.buffer).setBigUint64(0, BigInt(json.length), true);
  file.set(json, 8);
  let p = 8 + json.length;
  for (const part of parts) {
    file.set(part, p);
    p += part.length;
  }
  return file;
}

Deno.test("loadHuggingFaceReformer: BF16 and F16 weights are widened to f32", async () => {
  const src = FIXTURES + "single_chunk_dec";
  const dir = await Deno.makeTempDir();
  try {
    Deno.copyFileSync(`${src}/config.json`, `${dir}/config.json`);
    const bytes = Deno.readFileSync(`${src}/model.safetensors`);
    const f32 = await loadHuggingFaceReformer(src);
    Deno.writeFileSync(`${dir}/model.safetensors`, halfFile(bytes, "BF16"));
    const bf = await loadHuggingFaceReformer(dir);
    const a = T.treeTensors(f32.params), b = T.treeTensors(bf.params);
    for (let i = 0; i < a.length; i++) {
      const want = Float32Array.from(await a[i].data() as Float32Array, (x) => {
        const u = new Uint32Array(new Float32Array([x]).buffer);
        u[0] &= 0xffff0000;
        return new Float32Array(u.buffer)[0];
      });
      assert.deepEqual(await b[i].data(), want);
    }
    Deno.writeFileSync(`${dir}/model.safetensors`, halfFile(bytes, "F16"));
    const h = await loadHuggingFaceReformer(dir);
    // The word embedding is stored untransposed: its first values are the patterns in order.
    assert.deepEqual(
      Array.from(await h.params.embed.table.data() as Float32Array).slice(0, 5),
      F16.map(([, v]) => Math.fround(v)),
    );
    for (const x of [f32.params, bf.params, h.params]) disposeTree(x);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
