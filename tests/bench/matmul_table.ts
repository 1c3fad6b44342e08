/**
 * Prints a GFLOP/s table of square f32 matmuls: ours against tfjs-backend-webgpu, on the
 * default device. `deno run -A tests/bench/matmul_table.ts [sizes...]`. Each size is timed as
 * rounds of back-to-back products followed by one wait for the GPU (ours: `sync()`; tfjs:
 * reading back one element), keeping the best round, so the wait's latency is amortised the
 * same way for both libraries. Sizes default to 256..4096 on a hardware adapter and 256..1024
 * on a software one.
 *
 * On the device machine, where node_modules cannot be carried, bundle first:
 * `deno bundle --platform deno -o .gpu/matmul_table.js tests/bench/matmul_table.ts`, then run
 * `bash .gpu/run.sh deno run -A .gpu/matmul_table.js`.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-webgpu";
import { init, sync, tensor } from "../../mod.ts";
import { matmul } from "../../ops/matmul.ts";

const { backend, adapter } = await init({ quiet: true });
const software = backend === "cpu" || /software|llvmpipe|swiftshader|lavapipe/i.test(adapter);
const sizes = Deno.args.length
  ? Deno.args.map(Number)
  : software
  ? [256, 512, 1024]
  : [256, 512, 1024, 2048, 4096];
let tfReady = false;
try {
  tfReady = backend === "webgpu" && await tf.setBackend("webgpu");
} catch (e) {
  console.log(`tfjs-backend-webgpu did not initialise: ${e}`);
}
console.log(`adapter: ${adapter}${tfReady ? "" : " (tfjs baseline unavailable)"}`);

function values(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

/**
 * GFLOP/s of `run` at its best round. A wait on the GPU costs milliseconds in Deno, so a round
 * is `reps` back-to-back products and one wait, with `reps` grown until a round lasts about
 * `target` seconds; the best of a few rounds counts.
 */
async function time(run: () => void, wait: () => Promise<void>, flop: number): Promise<number> {
  const target = software ? 0.05 : 0.25;
  const round = async (reps: number) => {
    const t = performance.now();
    for (let i = 0; i < reps; i++) run();
    await wait();
    return (performance.now() - t) / 1e3;
  };
  await round(1); // compiles pipelines
  let reps = 1;
  for (let el = await round(1); el < target && reps < 4096; el = await round(reps)) {
    reps = Math.min(4096, reps * Math.max(2, Math.ceil(1.2 * target / el)));
  }
  let best = Infinity;
  for (let r = 0; r < (software ? 2 : 3); r++) best = Math.min(best, (await round(reps)) / reps);
  return flop / best / 1e9;
}

const rows: string[][] = [];
for (const n of sizes) {
  const flop = 2 * n ** 3;
  const av = values(n * n, 1), bv = values(n * n, 2);
  const a = tensor(av, { shape: [n, n] }), b = tensor(bv, { shape: [n, n] });
  const ours = await time(() => matmul(a, b).dispose(), () => sync(), flop);
  a.dispose();
  b.dispose();
  let theirs = NaN;
  if (tfReady) {
    const ta = tf.tensor2d(av, [n, n]), tb = tf.tensor2d(bv, [n, n]);
    let last: tf.Tensor | null = null;
    theirs = await time(
      () => {
        last?.dispose();
        last = tf.matMul(ta, tb);
      },
      async () => {
        const one = tf.slice(last!, [0, 0], [1, 1]);
        await one.data();
        one.dispose();
      },
      flop,
    );
    tf.dispose([ta, tb, last!]);
  }
  const row = [
    `${n}`,
    ours.toFixed(1),
    Number.isNaN(theirs) ? "-" : theirs.toFixed(1),
    Number.isNaN(theirs) ? "-" : (ours / theirs).toFixed(2),
  ];
  rows.push(row);
  console.log(`  ${n}^3: ours ${row[1]} GFLOP/s, tfjs ${row[2]} GFLOP/s`);
}
console.log("\n| size | ours GFLOP/s | tfjs GFLOP/s | ours / tfjs |");
console.log("| ---: | ---: | ---: | ---: |");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
