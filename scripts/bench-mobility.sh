#!/usr/bin/env bash
# Mobility convergence benchmark (issue 6): four roamers (MS/MR, xTR-A, xTR-B, remote xTR-C)
# in network namespaces; a host moves between A and B 20 times while a remote host streams to
# it. Prints p50/p99 convergence, the datagrams lost per move and the ratio to a first-contact
# resolution measured in the same run, twice: SMR-driven, then subscription-driven (RFC 9437,
# `ip lisp itr subscribe` on the remote xTR). Needs root (network namespaces). Not part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release -q --test lisp_mobility_netns mobility_convergence_benchmark -- \
    --ignored --nocapture --test-threads 1 2>&1 | grep -v '^first exchange'
