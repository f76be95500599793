# `just` is optional: every recipe is a script under scripts/.

# Build capsa and run a demo container.
demo:
    ./scripts/demo.sh

# The whole test suite (what CI runs).
test:
    ./scripts/test.sh

# Only the OCI validation ratchet, against the debug build.
conformance:
    cargo build -p capsa
    integration_test/conformance/run-ratchet.sh target/debug/capsa

# Lifecycle benchmark beside runc, crun and youki (root). `just bench --quick` is the smoke run.
bench *ARGS:
    ./bench/run.sh {{ARGS}}
