#!/usr/bin/env bash
# The whole test suite, from a fresh machine that has only the Rust toolchain.
# Installs what the tests need when it is missing, then runs formatting, lints and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v tshark >/dev/null 2>&1 || need_apt+=(tshark)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
command -v ping >/dev/null 2>&1 || need_apt+=(iputils-ping)
command -v ethtool >/dev/null 2>&1 || need_apt+=(ethtool)
# The image tests: qemu boots the VM image, xorriso makes its config drives, a Docker engine
# (started by the test itself) runs the container image.
# eBPF programs (platforms/bpf, built by clang) and the tools the kernel-backend tests inspect.
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
[ -e /usr/include/bpf/bpf_helpers.h ] || need_apt+=(libbpf-dev)
command -v bpftool >/dev/null 2>&1 || [ -x /usr/sbin/bpftool ] || need_apt+=(bpftool)
command -v xorriso >/dev/null 2>&1 || need_apt+=(xorriso)
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    # Debian 12's qemu-system-x86 wants its own qemu-utils (7.2); the machine may carry 10.
    need_apt+=(qemu-system-x86 'qemu-utils=1:7.2*')
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "== installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends --allow-downgrades "${need_apt[@]}" >/dev/null
fi
python3 -c "import scapy" >/dev/null 2>&1 || { echo "== installing scapy"; python3 -m pip install -q scapy; }
for tool in rustfmt cargo-clippy; do
    command -v "$tool" >/dev/null 2>&1 || { echo "missing $tool: install the rustfmt and clippy components" >&2; exit 1; }
done

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== fuzz targets build"
cargo check --manifest-path fuzz/Cargo.toml --quiet

echo "== appliance images (scripts/build-images.sh)"
scripts/build-images.sh

echo "== cargo test"
# The status is kept, not acted on at once: the summary is printed also when a test fails.
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee target/test-output.txt || status=$?
# One closing line for the whole run, in the plain 'N passed, N failed' form.
awk '/^test result:/ { p += $4; f += $6 } END { printf "summary: %d passed, %d failed\n", p, f }' target/test-output.txt
exit "$status"
