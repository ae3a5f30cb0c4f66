#!/usr/bin/env bash
# Builds upstream QEMU 10.2.2 (TCG only, i386 and x86_64 system emulators) into livemig's cache,
# for `livemig bench --peer qemu --qemu <path>`. Debian 12 ships QEMU 7.2, which has no
# zero-page-detection parameter and loses pages under TCG with many dirty syncs: no yardstick.
#
#   sudo scripts/build-qemu-peer.sh            # prints the path of qemu-system-x86_64 at the end
#
# What it does, in order (each step is skipped when its result is already there):
#   1. installs the build tools with apt: ninja, glib, pixman, libfdt, flex, bison, seabios, and
#      meson >= 1.5 with python3-pycotap from bookworm-backports (bookworm's meson is 1.0; the
#      backports entry is added to /etc/apt/sources.list.d/ and nothing else comes from there);
#   2. downloads Debian's source package qemu 1:10.2.2+ds-1 (deb.debian.org, else
#      snapshot.debian.org) and checks the upstream tarball's SHA-256;
#   3. applies Debian's two build-system patches that let meson run without the firmware blobs
#      the +ds repack strips, configures, and builds with ninja (6-10 min on 2 cores);
#   4. installs into $LIVEMIG_QEMU_PREFIX (default ~/.cache/livemig/qemu-10.2.2) with SeaBIOS,
#      its VGA BIOSes and the option ROMs a -kernel boot needs.
set -euo pipefail

VERSION=10.2.2
DEBVER=10.2.2+ds-1
ORIG_SHA256=be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/livemig"
PREFIX="${LIVEMIG_QEMU_PREFIX:-$CACHE/qemu-$VERSION}"
WORK="$CACHE/qemu-$VERSION-build"
MIRRORS=(
  "http://deb.debian.org/debian/pool/main/q/qemu"
  "https://snapshot.debian.org/archive/debian/20260301T000000Z/pool/main/q/qemu"
)

say() { printf '== %s\n' "$*"; }
die() { printf 'build-qemu-peer: %s\n' "$*" >&2; exit 1; }

if [[ -x "$PREFIX/bin/qemu-system-x86_64" ]] &&
  "$PREFIX/bin/qemu-system-x86_64" --version | grep -q "version $VERSION"; then
  say "QEMU $VERSION is already built"
  for f in /usr/share/seabios/vgabios*.bin /usr/share/qemu/*.rom /usr/share/qemu/*.bin \
    /usr/lib/ipxe/qemu/*.rom; do
    [[ -e "$PREFIX/share/qemu/$(basename "$f")" ]] || cp -L "$f" "$PREFIX/share/qemu/" 2>/dev/null || true
  done
  echo "$PREFIX/bin/qemu-system-x86_64"
  exit 0
fi

# 1. Build tools.
need_apt=()
for p in ninja-build libglib2.0-dev libpixman-1-dev libfdt-dev flex bison seabios qemu-system-data ipxe-qemu \
  pkg-config xz-utils; do
  dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p")
done
meson_ok() { command -v meson >/dev/null && dpkg --compare-versions "$(meson --version)" ge 1.5; }
if ((${#need_apt[@]})) || ! meson_ok || ! dpkg -s python3-pycotap >/dev/null 2>&1; then
  [[ $(id -u) -eq 0 ]] || die "installing build tools needs root (apt-get): run it with sudo, or install: ${need_apt[*]} meson>=1.5 python3-pycotap"
  if ! meson_ok; then
    src=/etc/apt/sources.list.d/livemig-bookworm-backports.sources
    [[ -f $src ]] || cat >"$src" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  say "apt-get install ${need_apt[*]} meson python3-pycotap (meson from bookworm-backports)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports meson python3-pycotap >/dev/null
  meson_ok || die "meson >= 1.5 is still missing after apt-get (found: $(meson --version 2>&1))"
fi

# 2. Sources.
mkdir -p "$WORK"
cd "$WORK"
fetch() {
  local f=$1
  [[ -s $f ]] && return 0
  for m in "${MIRRORS[@]}"; do
    say "downloading $m/$f"
    if curl -fsSL --retry 2 -o "$f.part" "$m/$f"; then mv "$f.part" "$f"; return 0; fi
  done
  die "could not download $f from: ${MIRRORS[*]}"
}
fetch "qemu_${VERSION}+ds.orig.tar.xz"
fetch "qemu_${DEBVER}.debian.tar.xz"
echo "$ORIG_SHA256  qemu_${VERSION}+ds.orig.tar.xz" | sha256sum -c --quiet - ||
  die "qemu_${VERSION}+ds.orig.tar.xz: SHA-256 differs from $ORIG_SHA256"

if [[ ! -f src/.livemig-patched ]]; then
  rm -rf src && mkdir src
  tar -xJf "qemu_${VERSION}+ds.orig.tar.xz" -C src --strip-components=1
  tar -xJf "qemu_${DEBVER}.debian.tar.xz" -C src
  grep -q "^$VERSION" src/VERSION || die "src/VERSION is $(cat src/VERSION), expected $VERSION"
  for p in skip-unpack-edk2-blobs skip-install-dtb; do
    patch=$(find src/debian/patches -name "*$p*" | head -n1)
    [[ -n $patch ]] || die "Debian's patch $p is not in the debian tarball"
    say "applying $(basename "$patch")"
    patch -d src -p1 -s <"$patch"
  done
  touch src/.livemig-patched
fi

# 3. Configure and build. --python: a pyenv python3 on PATH cannot see Debian's meson.
cd src
if [[ ! -f build/build.ninja ]]; then
  say "configure"
  ./configure --prefix="$PREFIX" --python=/usr/bin/python3 \
    --target-list=x86_64-softmmu,i386-softmmu --disable-docs --disable-werror --enable-tcg \
    --disable-kvm --disable-xen --disable-sdl --disable-gtk --disable-vnc --disable-opengl \
    --disable-spice --disable-tools --disable-download --disable-install-blobs >configure.log ||
    { tail -n 30 configure.log >&2; die "configure failed (full log: $PWD/configure.log)"; }
fi
say "ninja -j$(nproc) (6-10 min on 2 cores)"
ninja -C build -j"$(nproc)" >build.log || { tail -n 30 build.log >&2; die "build failed (log: $PWD/build.log)"; }

# 4. Install, with the firmware a -kernel boot of a PC needs.
ninja -C build install >install.log
data="$PREFIX/share/qemu"
mkdir -p "$data"
# SeaBIOS and its VGA BIOSes (the PC's default VGA needs vgabios-stdvga.bin).
cp /usr/share/seabios/bios-256k.bin /usr/share/seabios/bios.bin /usr/share/seabios/vgabios*.bin "$data/"
# The option ROMs (kvmvapic, linuxboot_dma; the default NIC's efi-e1000.rom from ipxe-qemu) from
# Debian's qemu-system-data and ipxe-qemu: standalone firmware, the same for every QEMU version.
for rom in /usr/share/qemu/*.rom /usr/share/qemu/*.bin /usr/lib/ipxe/qemu/*.rom; do
  [[ -e "$data/$(basename "$rom")" ]] || cp -L "$rom" "$data/" 2>/dev/null || true
done
[[ -e "$data/kvmvapic.bin" && -e "$data/linuxboot_dma.bin" ]] ||
  die "kvmvapic.bin or linuxboot_dma.bin missing: install qemu-system-data"

"$PREFIX/bin/qemu-system-x86_64" --version | head -n1
say "done; the peer is: livemig bench --peer qemu --qemu $PREFIX/bin/qemu-system-x86_64"
echo "$PREFIX/bin/qemu-system-x86_64"
