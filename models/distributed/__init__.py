"""Region-scale embedding on Dask distributed (Qt-free; no qgis, no torch).

The same engine as the single-process `models.embedding.job.embed_stacks`, run as one
Dask task per tile (with its halo) on a cluster: an embedded `LocalCluster` on this
machine by default, or an existing cluster (`--scheduler tcp://host:port`).

- `run.embed_distributed(...)` runs a job; `python -m models.distributed embed --help`
  is its command line.
- Every task calls `models.embedding.job.embed_one_tile`, the per-tile function of the
  single-process engine, so the numbers come from one code path and are identical.
- Workers load the ONNX models once per worker process (`worker.cached_models`).
- Each finished tile is saved atomically into `OUTPUT/.cameo-tiles/` (durable, so an
  interrupted run resumes with `--resume` without recomputing it); the client, the
  single writer, copies tiles into the per-date files as they arrive and publishes
  the same outputs as the single-process engine (one COG per date + `embeddings.vrt`).

This file imports nothing, so `python -m models.distributed --help` and the Processing
plugin never need dask.
"""
