#!/usr/bin/env bash
# Installs desktop-streamer on a Debian 12+ or Ubuntu 22.04+ kiosk: runtime packages, the
# binaries, a service user, configuration (never overwriting an operator's), systemd units.
# Run it again at any time: it changes only what is missing or out of date.
set -euo pipefail

PREFIX=/usr/local
CONF_DIR=/etc/desktop-streamer
STATE_DIR=/var/lib/desktop-streamer
UNIT_DIR=/etc/systemd/system
SERVICE_USER=desktop-streamer
BINARIES=(desktop-streamer desktop-streamer-watchdog desktop-streamer-web desktop-streamer-monitor)
UNITS=(desktop-streamer.service desktop-streamer-watchdog.service desktop-streamer-web.service)
RUNTIME_PACKAGES=(
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x gstreamer1.0-vaapi
)
BUILD_PACKAGES=(pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev)
MIN_RUST=1.92

usage() {
    cat <<USAGE
Usage: sudo ./install.sh [--uninstall [--purge]] [--help]

  (no option)   install or update desktop-streamer and start its services
  --uninstall   stop and remove the services and binaries; keep configuration and data
  --purge       with --uninstall: also remove $CONF_DIR, $STATE_DIR and the service user
  --help        show this text
USAGE
}

src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
step_no=0
current=""
step() { step_no=$((step_no + 1)); current="$*"; printf '\n[%d] %s\n' "$step_no" "$*"; }
fail() { printf '\ninstall.sh: step %d (%s) failed: %s\n' "$step_no" "$current" "$*" >&2; exit 1; }
trap 'fail "a command exited with an error (see above)"' ERR

uninstall=false purge=false
for arg in "$@"; do
    case "$arg" in
        --uninstall) uninstall=true ;;
        --purge) purge=true ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; echo "install.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done
$purge && ! $uninstall && { echo "install.sh: --purge goes with --uninstall" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (sudo ./install.sh)" >&2; exit 1; }
have_systemd() { [ -d /run/systemd/system ]; }

if $uninstall; then
    step "Stopping and removing the services"
    if have_systemd; then systemctl disable --now "${UNITS[@]}" 2>/dev/null || true; fi
    for u in "${UNITS[@]}"; do rm -f "$UNIT_DIR/$u"; done
    if have_systemd; then systemctl daemon-reload; fi
    step "Removing the binaries"
    for b in "${BINARIES[@]}"; do rm -f "$PREFIX/bin/$b"; done
    rm -f /etc/logrotate.d/desktop-streamer
    if $purge; then
        step "Removing configuration, data and the service user"
        rm -rf "$CONF_DIR" "$STATE_DIR"
        if id "$SERVICE_USER" >/dev/null 2>&1; then userdel "$SERVICE_USER"; fi
    else
        echo "Kept $CONF_DIR and $STATE_DIR (remove them with --uninstall --purge)."
    fi
    exit 0
fi

step "Checking the operating system"
# shellcheck disable=SC1091
. /etc/os-release
case "${ID:-}:${VERSION_ID:-0}" in
    debian:1[2-9]* | debian:[2-9][0-9]*) ;;
    ubuntu:2[2-9].* | ubuntu:[3-9][0-9].*) ;;
    *) fail "${PRETTY_NAME:-this system} is not supported; use Debian 12+ or Ubuntu 22.04+" ;;
esac
echo "${PRETTY_NAME}"

step "Installing runtime packages"
missing=()
for p in "${RUNTIME_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "all present"
fi

step "Getting the binaries"
release="$src_dir/target/release"
if command -v cargo >/dev/null && printf '%s\n%s\n' "$MIN_RUST" "$(cargo --version | awk '{print $2}')" | sort -V -C; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${BUILD_PACKAGES[@]}" >/dev/null
    (cd "$src_dir" && cargo build --release --locked --bins)
else
    for b in "${BINARIES[@]}"; do
        [ -x "$release/$b" ] || fail "no Rust toolchain >= $MIN_RUST and no prebuilt $release/$b. Install Rust with rustup (https://rustup.rs), or build on another Debian machine with 'cargo build --release' and copy target/release here."
    done
    echo "using the binaries in $release"
fi
for b in "${BINARIES[@]}"; do install -m 0755 "$release/$b" "$PREFIX/bin/$b"; done

step "Creating the service user and directories"
id "$SERVICE_USER" >/dev/null 2>&1 || useradd --system --home-dir "$STATE_DIR" --shell /usr/sbin/nologin "$SERVICE_USER"
install -d -m 0755 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE_DIR"
install -d -m 0755 "$CONF_DIR"

step "Writing configuration (existing files are kept)"
for f in "$src_dir"/config/etc/*; do
    name=$(basename "$f")
    if [ -e "$CONF_DIR/$name" ]; then
        echo "kept    $CONF_DIR/$name"
    else
        install -m 0640 -g "$SERVICE_USER" "$f" "$CONF_DIR/$name"
        echo "created $CONF_DIR/$name"
    fi
done
"$PREFIX/bin/desktop-streamer" --config "$CONF_DIR/config.json" check-config
"$PREFIX/bin/desktop-streamer-watchdog" --config "$CONF_DIR/watchdog-config.json" check-config
"$PREFIX/bin/desktop-streamer-web" --config "$CONF_DIR/web-config.json" check-config

step "Installing the systemd units and log rotation"
for u in "${UNITS[@]}"; do install -m 0644 "$src_dir/systemd/$u" "$UNIT_DIR/$u"; done
install -m 0644 "$src_dir/logrotate/desktop-streamer" /etc/logrotate.d/desktop-streamer

step "Starting the services"
if have_systemd; then
    systemctl daemon-reload
    systemctl enable "${UNITS[@]}"
    systemctl restart "${UNITS[@]}"
    systemctl --no-pager --lines=0 status "${UNITS[@]}" || true
else
    echo "systemd is not running here: the units are installed and start on the next boot"
fi

host=$(hostname -I 2>/dev/null | awk '{print $1}')
host=${host:-127.0.0.1}
printf '\nInstalled. Dashboard: http://%s:8080/  HLS: http://%s:8888/hls/desktop/playlist.m3u8\n' "$host" "$host"
