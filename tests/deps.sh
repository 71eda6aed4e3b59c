#!/usr/bin/env bash
# Installs the Debian packages the build and the test suite need, and only those missing.
# Safe to run again: it does nothing when everything is there.
set -euo pipefail

packages=(
    # Building the GStreamer bindings
    pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
    # GStreamer elements the streamer uses (capture, encoders, HLS) and gst-launch for benchmarks
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
    gstreamer1.0-libav gstreamer1.0-x gstreamer1.0-tools gstreamer1.0-vaapi
    # A real X server with two monitors (Xorg's dummy driver) and xrandr to change them
    xserver-xorg-core xserver-xorg-video-dummy x11-xserver-utils
    # Decoding produced segments in tests
    ffmpeg
    # A real browser for the browser tests, and Node.js to drive it (playwright-core from npm)
    chromium nodejs npm
    # A real SMTP server for the watchdog's alert tests (run with Debian's /usr/bin/python3)
    python3-aiosmtpd
    # Certificates for the TLS email tests
    openssl
    # A real systemd user manager with its own D-Bus bus for the watchdog's tests
    systemd dbus util-linux
    # A stepped wall clock for one process (libfaketime), as NTP steps a board without an RTC
    faketime
    # Real log rotation for the log tests
    logrotate
    # Real RTSP servers for the camera tests (GStreamer's RTSP server through Debian's python3)
    gir1.2-gst-rtsp-server-1.0 python3-gi
    # Load generator for the dashboard benchmark
    wrk
    # A booted Debian 12 container (systemd as PID 1) for the installer's test
    debootstrap systemd-container
)

missing=()
for p in "${packages[@]}"; do
    # Node.js installed another way (nodesource, the machine image) brings its own npm.
    if [ "$p" = nodejs ] || [ "$p" = npm ]; then
        command -v node >/dev/null && command -v npm >/dev/null && continue
    fi
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#packages[@]} Debian packages present"
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps: missing ${missing[*]}; run as root or install sudo" >&2; exit 1; }
    sudo=(sudo)
fi
echo "deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
