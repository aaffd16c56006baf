#!/usr/bin/env bash
# Build and run the ns-3 (3.37, Debian's libns3-dev) star of issue 17: the baseline that
# `hovercraft-sim bench` is compared with per delivered packet. Arguments go to the
# program (ns-3 CommandLine), e.g.:
#   scripts/ns3-star.sh --servers=5 --rate=1e6 --duration=0.1 --mode=hovercraft --seed=1
# NS3_STAR_BIN overrides where the binary is built (default: under ~/.cache; rebuilt when
# star.cc is newer).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
libs=(-lns3-point-to-point -lns3-internet -lns3-applications -lns3-traffic-control
      -lns3-network -lns3-core)

if [[ ! -e /usr/include/ns3/point-to-point-module.h ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "ns3-star: libns3-dev is missing; as root: apt-get install libns3-dev" >&2
        exit 1
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libns3-dev
fi

bin="${NS3_STAR_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/hovercraft-ns3/ns3-star}"
mkdir -p "$(dirname "$bin")"
if [[ ! -x "$bin" || "$here/ns3/star.cc" -nt "$bin" ]]; then
    g++ -O2 -std=c++17 -DNDEBUG -o "$bin" "$here/ns3/star.cc" "${libs[@]}"
fi
exec "$bin" "$@"
