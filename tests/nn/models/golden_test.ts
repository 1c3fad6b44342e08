/**
 * Golden values: the loss and a few gradient entries of a tiny Reformer LM and a tiny Sparse
 * Transformer LM at fixed seeds, on every backend, against constants. A refactor that changes
 * the math (initialisation, hashing, attention, dropout bits, loss) cannot pass this test.
 *
 * How the constants were generated: by running this file once on the code as it stood when the
 * test was added, with `GOLDEN_PRINT=1` (it then prints the measured values as a TypeScript
 * object instead of asserting them):
 *
 *     GOLDEN_PRINT=1 XDG_RUNTIME_DIR=/tmp deno test -A tests/nn/models/golden_test.ts
 *
 * The constants are the CPU values (WebGPU agreed to within 7e-6 relative at the time).
 * Only regenerate them for an intended change of the math, and say so in the commit.
 */
import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { noLeaks, testDevices } from "../../util.ts";

const printOnly = Deno.env.get("GOLDEN_PRINT") === "1";
/** Relative tolerance of every golden value (floating-point summation order differs). */
const RTOL = 1e-5;
/** Absolute floor for values near zero. */
const ATOL = 1e-7;

const vocab = 7;
const [batch, len] = [2, 16];

/** Token ids from a fixed formula (no generator to drift). */
function tokens(device: T.DeviceName, shift: number): T.Tensor {
  const ids = Int32Array.from(
    { length: batch * len },
    (_, i) => (i * 5 + shift + (i >> 3)) % vocab,
  );
  return T.tensor(ids, { shape: [batch, len], dtype: "i32", device });
}

/** A leaf of a gradient tree by path (`["blocks", 0, "f", "attn", "wqk"]`) and flat index. */
type Probe = [path: (string | number)[], index: number];

interface Golden {
  loss: number;
  /** Sum of squares of every gradient entry. */
  gradSumSq: number;
  /** The probed gradient entries, in the order of the probes. */
  entries: number[];
}

function leaf(tree: unknown, path: (string | number)[]): T.Tensor {
  let node = tree;
  for (const k of path) node = (node as Record<string | number, unknown>)[k];
  assert.ok(node instanceof T.Tensor, `no tensor at ${path.join(".")}`);
  return node;
}

async function measure<P>(
  lossOf: (p: P) => T.Tensor,
  params: P,
  probes: Probe[],
): Promise<Golden> {
  const [l, g] = T.valueAndGrad(lossOf)(params);
  const loss = (await l.data())[0];
  let gradSumSq = 0;
  for (const t of T.treeTensors(g)) for (const v of await t.data()) gradSumSq += v * v;
  const entries: number[] = [];
  for (const [path, i] of probes) entries.push((await leaf(g, path).data())[i]);
  l.dispose();
  T.disposeTree(g);
  return { loss, gradSumSq, entries };
}

function assertGolden(name: string, got: Golden, want: Golden): void {
  const close = (what: string, a: number, b: number) =>
    assert.ok(
      Math.abs(a - b) <= RTOL * Math.abs(b) + ATOL,
      `${name} ${what}: got ${a}, golden ${b} (rtol ${RTOL})`,
    );
  close("loss", got.loss, want.loss);
  close("gradient sum of squares", got.gradSumSq, want.gradSumSq);
  assert.equal(got.entries.length, want.entries.length);
  got.entries.forEach((v, i) => close(`gradient entry ${i}`, v, want.entries[i]));
}

async function check<P>(
  name: string,
  model: {
    init(key: T.Tensor): P;
    loss(p: P, x: T.Tensor, y: T.Tensor, o: T.nn.ApplyOptions): T.Tensor;
  },
  probes: Probe[],
  want: Golden,
  device: T.DeviceName,
): Promise<void> {
  await noLeaks(async () => {
    using initKey = T.random.key(1234, { device });
    using dropKey = T.random.key(99, { device });
    const params = model.init(initKey);
    using x = tokens(device, 0);
    using y = tokens(device, 3);
    const got = await measure(
      (p) => model.loss(p, x, y, { key: dropKey, training: true }),
      params,
      probes,
    );
    T.disposeTree(params);
    if (printOnly) console.log(`${name} on ${device}:`, JSON.stringify(got));
    else assertGolden(`${name} on ${device}`, got, want);
  });
}

const reformerProbes: Probe[] = [
  [["embed", "table"], 9],
  [["pos", "tables", 1], 5],
  [["blocks", 0, "f", "attn", "wqk"], 13],
  [["blocks", 0, "g", "ff", "in", "w"], 21],
  [["blocks", 1, "f", "attn", "wv"], 40],
  [["head", "w"], 30],
];
const reformerGolden: Golden = {
  loss: 2.330310821533203,
  gradSumSq: 1.799274697279792,
  entries: [
    0.028401631861925125,
    -0.011481959372758865,
    0.005398452281951904,
    0.0078094713389873505,
    -0.007069544401019812,
    0.017961204051971436,
  ],
};

const sparseProbes: Probe[] = [
  [["embed", "table"], 9],
  [["pos", "tables", 0], 70],
  [["blocks", 0, "attn", "wq"], 13],
  [["blocks", 1, "ff", "out", "w"], 21],
  [["blocks", 1, "attnNorm", "scale"], 3],
  [["head", "b"], 2],
];
const sparseGolden: Golden = {
  loss: 2.5556631088256836,
  gradSumSq: 1.6801068109807427,
  entries: [
    -0.031224891543388367,
    -0.011748086661100388,
    0.005036686547100544,
    0.018165843561291695,
    -0.0008479722891934216,
    0.07906989753246307,
  ],
};

Deno.test("golden: tiny Reformer LM loss and gradients", async (t) => {
  const model = T.nn.reformerLM({
    vocab,
    dModel: 8,
    dFF: 8,
    heads: 2,
    layers: 2,
    attention: ["lsh", "local"],
    nHashes: 2,
    chunkLen: 4,
    axialShape: [4, 4],
    ffChunks: 2,
    lmHeadChunks: 2,
    dropout: 0.1,
  });
  for (const device of testDevices()) {
    await t.step(
      device,
      () => check("reformerLM", model, reformerProbes, reformerGolden, device),
    );
  }
});

Deno.test("golden: tiny Sparse Transformer LM loss and gradients", async (t) => {
  const model = T.nn.sparseTransformerLM({
    vocab,
    dModel: 8,
    dFF: 8,
    heads: 2,
    layers: 2,
    pattern: "strided",
    stride: 4,
    blockSize: 2,
    maxLen: 16,
    ffChunks: 2,
    lmHeadChunks: 2,
    dropout: 0.1,
  });
  for (const device of testDevices()) {
    await t.step(
      device,
      () => check("sparseTransformerLM", model, sparseProbes, sparseGolden, device),
    );
  }
});
