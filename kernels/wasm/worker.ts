/**
 * Worker entry of the wasm backend's thread pool: instantiates the kernel module over the
 * shared memory it is sent, says it is ready, then serves jobs until told to quit.
 * @module
 */
import { parentPort } from "node:worker_threads";
import { Runtime } from "./runtime.ts";
import { serve } from "./threads.ts";

interface Init {
  memory: WebAssembly.Memory;
  bytes: Uint8Array<ArrayBuffer>;
  ctl: SharedArrayBuffer;
  part: number;
  parts: number;
}

const port = parentPort!;
port.once("message", async (data: Init) => {
  const { memory, bytes, ctl, part, parts } = data;
  const runtime = await Runtime.create(memory, bytes);
  port.postMessage("ready");
  // Let the ready message go out before this thread blocks in Atomics.wait.
  await new Promise((r) => setTimeout(r, 0));
  serve(runtime, ctl, part, parts);
});
