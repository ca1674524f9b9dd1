//! Loom models of every ordering shardcast relies on. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p loom-tests --release`.
//! Without `--cfg loom` the tests compile to nothing.
