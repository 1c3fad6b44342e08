/**
 * The table of jobs the thread pool runs, by index (each kernel file exports its index).
 * @module
 */
import type { JobFn } from "./runtime.ts";
import { JOB_MATMUL, matmulJob } from "./matmul.ts";
import { elementwiseJob, JOB_ELEMENTWISE } from "./elementwise.ts";
import { JOB_REDUCE, JOB_SOFTMAX, reduceJob, softmaxJob } from "./reduce.ts";
import { chunkAttentionJob, JOB_CHUNK_ATTENTION } from "./chunk_attention.ts";
import {
  JOB_LAYER_NORM,
  JOB_LAYER_NORM_GRAD,
  layerNormGradJob,
  layerNormJob,
} from "./layer_norm.ts";
import { chunkAttentionGradJob, JOB_CHUNK_ATTENTION_GRAD } from "./chunk_attention_grad.ts";
import { blockSparseJob, JOB_BLOCK_SPARSE } from "./block_sparse.ts";
import { JOB_SORT, sortJob } from "./sort.ts";
import { JOB_RANDOM, randomJob } from "./random.ts";
import { JOB_SCATTER_ADD, JOB_TAKE, scatterAddJob, takeJob } from "./indexing.ts";
import {
  JOB_SCATTER_ADD_ALONG,
  JOB_TAKE_ALONG,
  scatterAddAlongJob,
  takeAlongJob,
} from "./indexing_along.ts";

import { argReduceJob, JOB_ARG_REDUCE } from "./arg_reduce.ts";
const jobs: JobFn[] = [];
/** Puts `fn` at `index`, refusing a slot two kernel files both claim. */
function add(index: number, fn: JobFn): void {
  if (jobs[index]) throw new Error(`wasm: job index ${index} is taken twice`);
  jobs[index] = fn;
}
add(JOB_MATMUL, matmulJob);
add(JOB_ELEMENTWISE, elementwiseJob);
add(JOB_REDUCE, reduceJob);
add(JOB_SOFTMAX, softmaxJob);
add(JOB_CHUNK_ATTENTION, chunkAttentionJob);
add(JOB_LAYER_NORM, layerNormJob);
add(JOB_LAYER_NORM_GRAD, layerNormGradJob);
add(JOB_CHUNK_ATTENTION_GRAD, chunkAttentionGradJob);
add(JOB_BLOCK_SPARSE, blockSparseJob);
add(JOB_SORT, sortJob);
add(JOB_RANDOM, randomJob);
add(JOB_TAKE, takeJob);
add(JOB_SCATTER_ADD, scatterAddJob);
add(JOB_TAKE_ALONG, takeAlongJob);
add(JOB_SCATTER_ADD_ALONG, scatterAddAlongJob);
add(JOB_ARG_REDUCE, argReduceJob);

/** Jobs by index. */
export const JOBS: readonly JobFn[] = jobs;
