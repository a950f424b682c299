#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=32768 node --max-semi-space-size=1
// The agent's runtime settings (`npm start` and scripts/cluster run this file, so they apply there;
// scripts/bench-cluster.ts reads them from this line; the image sets them itself, in the Dockerfile):
// --max-semi-space-size=1: V8's young generation in 1 MB halves instead of up to 16 MB: 2 MB less idle
// RSS than 2 MB halves; idle CPU and propagation unchanged, a 100,000-entry catch-up ~0.4 s slower.
// MALLOC_ARENA_MAX=2: glibc gives each thread that allocates (V8's and libuv's workers) a malloc arena
// of its own, each keeping what that thread once used; with two, an idle agent in a 10-agent cluster
// uses 2.2-3.4 MB less RSS (about 113 instead of 115.5 MB), at no measurable CPU cost.
// MALLOC_MMAP_THRESHOLD_=32768: blocks of 32 KB and more get their own mapping, returned to the system
// when freed. By default glibc raises that threshold to the largest mapped block freed so far (startup
// frees blocks of megabytes), so later blocks up to that size come from the heap, which fragments and
// keeps what was freed: 6.5 MB of an idle agent's RSS (100.8 against 94.3 MB).
import { main } from './main.ts'

process.exitCode = await main(process.argv)
