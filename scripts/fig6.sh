#!/usr/bin/env bash
# Issue #6's experiment (the original paper's figure 6): resolution latency
# through LISP-MSX vs. DDT with a near and a distant root, cold and warm
# referral caches, 700 resolutions per case by default. Run as root (the lab
# makes network namespaces). Arguments go to `fig6` (see `fig6 --help`), e.g.
#   sudo scripts/fig6.sh -n 50 --out /tmp/fig6
# Results: scenarios/results/ (fig6-summary.md/.csv, fig6-samples.csv,
# fig6.svg, fig6-report.json) unless --out says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

if [ "$(id -u)" -ne 0 ]; then
  echo "fig6.sh: run as root (the lab makes network namespaces)" >&2
  exit 1
fi

cargo build --release -p lisp-agent -p lisp-msx-scenarios -p lab

name=fig6
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --name) name="${args[$((i + 1))]:-fig6}" ;;
    --name=*) name="${args[$i]#--name=}" ;;
  esac
done

cleanup() {
  # fig6 tears its lab down itself (also on Ctrl-C); this catches a crash.
  if [ -n "$(ip netns list 2>/dev/null | grep "^lmsx-${name}-" || true)" ] \
     || [ -e "/run/lisp-msx-lab/${name}" ]; then
    target/release/lab down "$name" >/dev/null 2>&1 || true
  fi
  rm -rf "/run/lisp-msx-${name}"
}
trap cleanup EXIT

start=$(date +%s)
target/release/fig6 "$@"
echo "fig6.sh: done in $(( $(date +%s) - start )) s"
