#!/usr/bin/env bash
# The README's Raspberry Pi steps, followed literally in an emulated Pi: an arm64 Debian 12
# (bookworm, Python 3.11) root filesystem made with debootstrap, run under QEMU user-mode.
#
#   sudo bash scripts/pi_emulated.sh [--cpu cortex-a76|cortex-a72] [--rootfs DIR] [--fresh]
#
# Steps (each skipped when already done; --fresh starts from a new root filesystem):
#   1. QEMU >= 8 user-mode from bookworm-backports (bookworm's 7.2 crashes inside ORT 1.32 and
#      shows the host's /proc/cpuinfo), registered with binfmt_misc;
#   2. debootstrap arm64 bookworm; the repository's committed tree copied in;
#   3. in the emulated Pi: the README's apt packages, EDGESPLIT_EXTRAS=device,sensors
#      bash scripts/bootstrap.sh (wheels only), `edgesplit device info` (asimddp: no on a Pi 4's
#      A72, yes on a Pi 5's A76);
#   4. INT8 models: copied from this host when its ONNX Runtime version matches (keyed by ORT
#      version, checked by sha256), else built in the emulator (hours);
#   5. `edgesplit device run` on an OCR frame and a KWS clip (OCR included: OpenCV's libraries);
#   6. the device-only demo in the emulated Pi against a cloud served on this host.
# Emulation is not a Pi: this checks what installs and runs, never how fast.
# Exits 0 with "SKIP: reason" where root, binfmt_misc or QEMU are not available.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
CPU=cortex-a76
ROOT=/var/tmp/edgesplit-pi-rootfs
FRESH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) CPU=$2; shift 2 ;;
    --rootfs) ROOT=$2; shift 2 ;;
    --fresh) FRESH=1; shift ;;
    *) echo "pi_emulated: unknown option $1 (--cpu, --rootfs, --fresh)" >&2; exit 2 ;;
  esac
done
OUT=${PI_EMULATED_OUT:-$REPO/build/pi-emulated}
mkdir -p "$OUT"
LOG=$OUT/pi-emulated-$CPU.log
say() { echo "pi_emulated: $*" | tee -a "$LOG" >&2; }
skip() { say "SKIP: $*"; exit 0; }
: > "$LOG"

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot, binfmt_misc)"
[ "$(uname -m)" = x86_64 ] || [ "$(uname -m)" = aarch64 ] || skip "host $(uname -m) not handled"

# -- 1. QEMU user-mode >= 8 and binfmt_misc ---------------------------------------------------
if [ "$(uname -m)" = x86_64 ]; then
  major=$(qemu-aarch64-static --version 2>/dev/null | sed -n 's/.*version \([0-9]*\).*/\1/p' | head -1 || true)
  if [ "${major:-0}" -lt 8 ]; then
    # The host's own Debian mirror (read from its apt sources), bookworm-backports suite.
    mirror=$(grep -hm1 '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | awk '{print $2}')
    [ -n "$mirror" ] || skip "no Debian mirror in /etc/apt/sources.list.d/debian.sources"
    bp=/etc/apt/sources.list.d/edgesplit-backports.sources
    [ -f "$bp" ] || printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" > "$bp"
    apt-get update -qq || skip "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports \
      qemu-user-static >/dev/null || skip "cannot install qemu-user-static from bookworm-backports"
  fi
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
    || skip "binfmt_misc cannot be mounted here"
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    conf=$(ls /usr/lib/binfmt.d/qemu-aarch64.conf 2>/dev/null || true)
    [ -n "$conf" ] || skip "qemu-user-static ships no binfmt entry for aarch64"
    # F: the kernel opens the interpreter now, so it works inside the chroot too.
    sed 's/:[A-Z]*$/:FP/' "$conf" > /proc/sys/fs/binfmt_misc/register 2>/dev/null \
      || skip "cannot register qemu-aarch64 with binfmt_misc (not permitted here)"
  fi
  say "QEMU: $(qemu-aarch64-static --version | head -1), CPU $CPU"
fi
export QEMU_CPU=$CPU

# -- 2. the arm64 root filesystem and the repository ------------------------------------------
cleanup() {
  for m in dev/pts dev proc sys; do mountpoint -q "$ROOT/$m" && umount -l "$ROOT/$m"; done
  [ -n "${CLOUD_PID:-}" ] && kill "$CLOUD_PID" 2>/dev/null || true
}
trap cleanup EXIT
if [ "$FRESH" = 1 ] && [ -d "$ROOT" ]; then cleanup; rm -rf "$ROOT"; fi
if [ ! -x "$ROOT/usr/bin/python3" ]; then
  mirror=$(grep -hm1 '^URIs:' /etc/apt/sources.list.d/debian.sources | awk '{print $2}')
  say "debootstrap arm64 bookworm into $ROOT (minutes under emulation)"
  debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,ca-certificates,sudo \
    bookworm "$ROOT" "$mirror" >>"$LOG" 2>&1 || skip "debootstrap failed (see $LOG)"
fi
rm -rf "$ROOT/opt/edgesplit" && mkdir -p "$ROOT/opt/edgesplit"
git -C "$REPO" archive HEAD | tar -x -C "$ROOT/opt/edgesplit"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
for m in proc sys dev dev/pts; do mountpoint -q "$ROOT/$m" || mount --bind "/$m" "$ROOT/$m"; done
# The host's TLS trust (e.g. a proxy's CA in $SSL_CERT_FILE) goes with it, so pip works the same.
trust=()
host_ca=${SSL_CERT_FILE:-${PIP_CERT:-}}
if [ -n "$host_ca" ] && [ -f "$host_ca" ]; then
  cp "$host_ca" "$ROOT/etc/ssl/host-ca.pem"
  trust=(SSL_CERT_FILE=/etc/ssl/host-ca.pem PIP_CERT=/etc/ssl/host-ca.pem)
fi
pi() { chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  QEMU_CPU="$CPU" "${trust[@]}" bash -c "cd /opt/edgesplit && $1"; }
say "emulated: $(pi 'uname -m; python3 --version' | tr '\n' ' ')"

# -- 3. the README's install steps, literally -------------------------------------------------
# Keep in sync with README.md, "Raspberry Pi": 1. Install on the Pi (picamera2 left out).
pi "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git python3-venv \
  espeak-ng fonts-dejavu-core fonts-liberation fonts-freefont-ttf gcc make libc6-dev \
  libportaudio2 libgl1 libglib2.0-0 libopus0 >/dev/null" >>"$LOG" 2>&1 || skip "apt-get in the emulated Pi failed"
pi "EDGESPLIT_EXTRAS=device,sensors bash scripts/bootstrap.sh" >>"$LOG" 2>&1 \
  || { say "FAIL: bootstrap (see $LOG)"; exit 1; }
say "venv: $(pi 'du -sh .venv | cut -f1')"
pi ".venv/bin/edgesplit device info --json /tmp/info.json" >>"$LOG" 2>&1
want=$([ "$CPU" = cortex-a72 ] && echo False || echo True)
got=$(pi ".venv/bin/python -c \"import json; print(json.load(open('/tmp/info.json'))['cpu']['flags']['asimddp'])\"" || echo '?')
say "device info: asimddp=$got (expected $want for $CPU)"
[ "$got" = "$want" ] || { say "FAIL: device info's asimddp"; exit 1; }

# -- 4. ready-to-run INT8 models, from this host when the ORT versions match ------------------
host_ort=$(.venv/bin/python -c 'import onnxruntime; print(onnxruntime.__version__)' 2>/dev/null || echo none)
pi_ort=$(pi ".venv/bin/python -c 'import onnxruntime; print(onnxruntime.__version__)'")
src="${EDGESPLIT_CACHE:-$HOME/.cache/edgesplit}/models/ort-$host_ort"
dst="$ROOT/root/.cache/edgesplit/models/ort-$pi_ort"
if [ "$host_ort" = "$pi_ort" ] && [ -d "$src" ]; then
  mkdir -p "$dst" && cp -a "$src/." "$dst/"
  (cd "$src" && find . -type f -name '*.onnx' -exec sha256sum {} +) > "$OUT/int8.sha256"
  (cd "$dst" && sha256sum -c --quiet "$OUT/int8.sha256") || { say "FAIL: INT8 copy checksum"; exit 1; }
  say "INT8 models: copied from the host (ORT $pi_ort, $(wc -l < "$OUT/int8.sha256") files, sha256 ok)"
else
  say "INT8 models: host ORT $host_ort != emulated $pi_ort; building in the emulator (slow)"
  pi ".venv/bin/edgesplit device build -w all" >>"$LOG" 2>&1 || { say "FAIL: device build"; exit 1; }
fi

# -- 5. OCR and KWS on files in the emulated Pi -------------------------------------------------
.venv/bin/python - "$ROOT/tmp" <<'EOF'
import sys
from pathlib import Path
from PIL import Image
from edgesplit.device.audio.synth import Utterance, synthesize, write_wav
from edgesplit.device.vision.render import render_frame
out = Path(sys.argv[1])
frame = render_frame(3)
Image.fromarray(frame.image).save(out / "frame.png")
(out / "frame.txt").write_text(frame.text)
write_wav(out / "stop.wav", synthesize(Utterance("stop", "en-gb", "m3")))
EOF
ocr=$(pi ".venv/bin/edgesplit device run -w glasses-ocr /tmp/frame.png" 2>>"$LOG" | tr -s ' \n' ' ')
say "OCR in the emulated Pi: $ocr (truth: $(cat "$ROOT/tmp/frame.txt"))"
squash() { tr -d ' \n' | tr -d "'"; }
echo "$ocr" | squash | grep -qF "$(squash < "$ROOT/tmp/frame.txt")" \
  || { say "FAIL: OCR did not read the frame"; exit 1; }
kws=$(pi ".venv/bin/edgesplit device run -w earbuds-kws /tmp/stop.wav" 2>>"$LOG" | tr -s ' \n' ' ')
say "KWS in the emulated Pi: $kws"
echo "$kws" | grep -q stop || { say "FAIL: KWS did not hear 'stop'"; exit 1; }

# -- 6. the device-only demo in the emulated Pi, the cloud on this host -----------------------
if [ -x .venv/bin/edgesplit ]; then
  port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  .venv/bin/edgesplit cloud serve --port "$port" --model glasses-ocr --model kws-embed-opus \
    --model kws-tail --model phone-intent >>"$LOG" 2>&1 &
  CLOUD_PID=$!
  for _ in $(seq 600); do
    .venv/bin/python -c "from edgesplit.device.oip_client import OipClient as C; C('http://127.0.0.1:$port').get('/v2/health/ready')" 2>/dev/null && break
    sleep 0.5
  done
  # Emulation is many times slower than a Pi: roomy deadlines, so routes are checked, not times.
  pi ".venv/bin/edgesplit demo --cloud http://127.0.0.1:$port --headless --requests 2 \
    --no-events --deadline glasses=120000 --deadline earbuds=60000 --deadline phone=60000 \
    --json /tmp/demo.json --out /tmp/demo" >>"$LOG" 2>&1 || { say "FAIL: demo (see $LOG)"; exit 1; }
  routes=$(.venv/bin/python -c "import json; d=json.load(open('$ROOT/tmp/demo.json')); print({s['device']: s['routes'] for s in d['summary']})")
  say "demo in the emulated Pi against the host's cloud: $routes"
fi
say "PASS ($CPU): install, device info, OCR, KWS and the device-only demo"
