/**
 * The table of jobs the thread pool runs, by index (each kernel file exports its index).
 * @module
 */
import type { JobFn } from "./runtime.ts";
import { matmulJob } from "./matmul.ts";

/** Jobs by index. */
export const JOBS: readonly JobFn[] = [matmulJob];
