#!/usr/bin/env bash
# Debian packages the suite needs beyond Python: FluidSynth and a General MIDI soundfont (music-generator's
# WAV renders) and PostgreSQL (music-recommender's server-grade store, and its tests). Idempotent: installs
# only what is missing; needs root (or sudo) the first time.
set -euo pipefail
need=()
command -v fluidsynth >/dev/null || need+=(fluidsynth)
[ -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
