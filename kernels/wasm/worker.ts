/**
 * Worker entry of the wasm backend's thread pool: instantiates the kernel module over the
 * shared memory it is sent, says it is ready, then serves jobs until told to quit.
 * @module
 */
import { Runtime } from "./runtime.ts";
import { serve } from "./threads.ts";

interface Init {
  memory: WebAssembly.Memory;
  bytes: Uint8Array<ArrayBuffer>;
  ctl: SharedArrayBuffer;
  part: number;
  parts: number;
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<Init>) => void) | null;
  postMessage(m: unknown): void;
  close(): void;
};

scope.onmessage = async (e: MessageEvent<Init>) => {
  scope.onmessage = null;
  const { memory, bytes, ctl, part, parts } = e.data;
  const runtime = await Runtime.create(memory, bytes);
  scope.postMessage("ready");
  // Let the ready message go out before this thread blocks in Atomics.wait.
  await new Promise((r) => setTimeout(r, 0));
  serve(runtime, ctl, part, parts);
  scope.close();
};
