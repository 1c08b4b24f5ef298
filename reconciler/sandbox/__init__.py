"""The local, faithful stand-in of the Batch API (DESIGN §6): OAuth token endpoint, v2 batch
endpoints with a real status machine on a configurable clock, real tiling analysis and PU
estimates (`reconciler.geo`), outputs written to a local S3 (moto's server), request counts for
benchmarks. Used by `reconciler sandbox serve`, by the tests and by the demo."""
