# shellcheck shell=bash
# Shell functions that lay out a container's root file system from this machine's own files,
# for images built offline (no registry is reachable): sourced by deploy/image/build and
# deploy/test/images. Needs bash.

# apt_install PACKAGE...: Debian packages, the package lists refreshed only when needed.
apt_install() {
  local apt=(apt-get)
  [ "$(id -u)" = 0 ] || apt=(sudo apt-get)
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "$@" >/dev/null 2>&1; then
    "${apt[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "$@" >/dev/null
  fi
}

# copy_libs ROOT FILE: the shared libraries FILE needs (as `ldd` lists them) and the dynamic
# loader, at the same paths under ROOT. Nothing for a static FILE.
copy_libs() {
  local root=$1 file=$2 lib
  # `ldd` prints "name => /path (addr)" and "/lib64/ld-linux-x86-64.so.2 (addr)"; a static
  # file makes it fail ("not a dynamic executable").
  for lib in $(ldd "$file" 2>/dev/null | grep -o '/[^ ]*' || true); do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

# copy_program ROOT SOURCE [TARGET]: SOURCE (symbolic links followed) at TARGET (default: the
# same path) under ROOT, with its libraries.
copy_program() {
  local root=$1 source=$2 target=${3:-$2}
  mkdir -p "$root$(dirname "$target")"
  cp -L "$source" "$root$target"
  copy_libs "$root" "$source"
}

# busybox_rootfs ROOT: a statically linked busybox with its applets in /bin, /tmp, and /etc
# with root, nobody, the name service order and the host's CA certificates.
busybox_rootfs() {
  local root=$1 busybox applet
  busybox=$(command -v busybox || true)
  if [ -z "$busybox" ] || ! file_is_static "$busybox"; then
    apt_install busybox-static
    busybox=/bin/busybox
  fi
  mkdir -p "$root/bin" "$root/tmp" "$root/etc/ssl/certs" "$root/root"
  chmod 1777 "$root/tmp"
  cp -L "$busybox" "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  # glibc reads this for host names; without it a static or copied glibc still works, but
  # the order is then its built-in one.
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
  [ -f /etc/ssl/certs/ca-certificates.crt ] || apt_install ca-certificates
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
}

# file_is_static FILE: true when FILE needs no dynamic loader (`ldd` names no file: it says
# "not a dynamic executable", or "statically linked" for a static PIE).
file_is_static() {
  ! ldd "$1" 2>/dev/null | grep -q /
}

# import_rootfs ROOT TAG CHANGE...: the folder as an image (`docker import -c CHANGE`).
import_rootfs() {
  local root=$1 tag=$2
  shift 2
  local changes=() change
  for change in "$@"; do changes+=(-c "$change"); done
  tar --numeric-owner -C "$root" -c . | docker import "${changes[@]}" - "$tag" >/dev/null
}
