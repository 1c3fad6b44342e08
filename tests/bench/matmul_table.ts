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
import { init } from "../../mod.ts";
import { initTfjs, matmulGflops } from "./matmul_pieces.ts";

const { backend, adapter } = await init({ quiet: true });
const software = backend === "cpu-reference" ||
  /software|llvmpipe|swiftshader|lavapipe/i.test(adapter);
const sizes = Deno.args.length
  ? Deno.args.map(Number)
  : software
  ? [256, 512, 1024]
  : [256, 512, 1024, 2048, 4096];
const tfReady = await initTfjs(backend);
console.log(`adapter: ${adapter}${tfReady ? "" : " (tfjs baseline unavailable)"}`);

const rows: string[][] = [];
for (const n of sizes) {
  const { ours, tfjs: theirs } = await matmulGflops(n, software, tfReady);
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
