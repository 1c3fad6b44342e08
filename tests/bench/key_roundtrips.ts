/**
 * GPU work of one small Reformer LM training step (causal LSH attention with dropout, Adam),
 * counted by wrapping the WebGPU API: compute dispatches, queue submits, buffer read-backs
 * (`mapAsync`), queue writes and buffers created. PRNG keys should add no read-back and no
 * submit. Also counts the live tensors a `foldIn(key(seed), i)` loop leaves behind.
 *
 * Run: `deno run -A tests/bench/key_roundtrips.ts` (WebGPU; prints one table row per step).
 */
import * as T from "../../mod.ts";
import { nn, optim, random, valueAndGrad } from "../../mod.ts";

const counts = { dispatches: 0, submits: 0, reads: 0, writes: 0, buffers: 0 };
function wrap<P extends object>(proto: P, name: keyof P, counter: keyof typeof counts): void {
  const f = proto[name] as (...a: unknown[]) => unknown;
  (proto as Record<string, unknown>)[name as string] = function (this: unknown, ...a: unknown[]) {
    counts[counter]++;
    return f.apply(this, a);
  };
}
wrap(GPUComputePassEncoder.prototype, "dispatchWorkgroups", "dispatches");
wrap(GPUQueue.prototype, "submit", "submits");
wrap(GPUQueue.prototype, "writeBuffer", "writes");
wrap(GPUBuffer.prototype, "mapAsync", "reads");
wrap(GPUDevice.prototype, "createBuffer", "buffers");

const { backend, adapter } = await T.init({ quiet: true });
if (backend !== "webgpu") throw new Error("key_roundtrips: needs WebGPU");

// The idiom of issue 14: only the outer key is disposed.
const before = T.memory().liveTensors;
for (let i = 0; i < 100; i++) random.foldIn(random.key(1), i).dispose();
console.log(`foldIn(key(1), i) x100: live tensors ${before} -> ${T.memory().liveTensors}`);

const model = nn.reformerLM({
  vocab: 64,
  dModel: 64,
  dFF: 128,
  heads: 2,
  layers: 2,
  attention: "lsh",
  nHashes: 2,
  chunkLen: 16,
  axialShape: [8, 16],
  dropout: 0.1,
  reversible: true,
});
const opt = optim.adam(1e-3);
let params = model.init(random.key(0));
let state = opt.init(params);
const tokens = T.keep(random.randint(random.key(1), [1, 129], 0, 64));
const input = T.keep(T.slice(tokens, [0, 0], [1, 128]));
const target = T.keep(T.slice(tokens, [0, 1], [1, 129]));
const lossGrad = valueAndGrad((p: typeof params, key: T.Tensor) =>
  model.loss(p, input, target, { key, training: true })
);
console.log(`Reformer step on ${adapter}`);
console.log("| step | dispatches | submits | read-backs | queue writes | buffers | live tensors |");
console.log("|---:|---:|---:|---:|---:|---:|---:|");
for (let i = 0; i < 3; i++) {
  await T.sync();
  const live = T.memory().liveTensors;
  const c0 = { ...counts };
  const out = T.scope(() => {
    const [loss, grads] = lossGrad(params, random.foldIn(random.key(100), i));
    const [updates, next] = opt.update(grads, state, params);
    return { loss, params: optim.applyUpdates(params, updates), state: next };
  });
  const loss = (await out.loss.data())[0];
  for (const t of [out.loss, ...T.treeTensors(params), ...T.treeTensors(state)]) t.dispose();
  params = out.params;
  state = out.state;
  await T.sync();
  const d = (k: keyof typeof counts) => counts[k] - c0[k];
  console.log(
    `| ${i} | ${d("dispatches")} | ${d("submits")} | ${d("reads")} | ${d("writes")} | ` +
      `${d("buffers")} | ${live} -> ${T.memory().liveTensors} |  (loss ${loss.toFixed(4)})`,
  );
}
