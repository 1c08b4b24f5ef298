"""The local, faithful stand-in of the Batch API (README, "The sandbox"): OAuth token endpoint, v1 and v2 batch
endpoints with a real status machine on a configurable clock (real time at a chosen speed, or a
manual clock that tests step, see `clock`), real tiling analysis and PU estimates
(`reconciler.geo`), outputs written to a local S3 (moto's server), request counts for benchmarks.
Used by `reconciler sandbox serve`, by the tests and by the demo."""
