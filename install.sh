#!/usr/bin/env bash
# Installs desktop-streamer on a Debian 12+ or Ubuntu 22.04+ kiosk (or a derivative of them, such
# as Linux Mint 21+): runtime packages, the binaries, a service user, configuration (never
# overwriting an operator's), hardened systemd units with drop-ins from the configuration, a
# polkit rule, hourly log rotation (a timer); then starts the services and waits until the
# stream is live.
#
# Idempotent: run it again at any time; it changes only what is missing or different and says
# when nothing changed. `./install.sh --help` explains every option.
set -Eeuo pipefail

PREFIX=/usr/local
BIN_DIR=$PREFIX/bin
DOC_DIR=$PREFIX/share/doc/desktop-streamer
CONF_DIR=/etc/desktop-streamer
STATE_DIR=/var/lib/desktop-streamer
LOG_DIR=/var/log/desktop-streamer
CACHE_DIR=/var/cache/desktop-streamer
UNIT_DIR=/etc/systemd/system
POLKIT_RULE=/etc/polkit-1/rules.d/50-desktop-streamer.rules
# Where versions with --allow-any-unit put a .pkla grant for polkit older than 0.106; it let the
# service user manage ANY unit, transient ones (systemd-run, as root) included: removed.
POLKIT_PKLA=/etc/polkit-1/localauthority/50-local.d/50-desktop-streamer.pkla
# Where polkit is older than 0.106 instead: root's fixed-list helper (systemd/control/), reached
# by the dashboard and the watchdog over a socket only the group CONTROL_GROUP may use.
CONTROL_HELPER=$PREFIX/lib/desktop-streamer/control
CONTROL_SOCKET=desktop-streamer-control.socket
CONTROL_SERVICE=desktop-streamer-control@.service
CONTROL_GROUP=desktop-streamer-control
# The generated admin password and API token, root only (0600), written the moment they exist so
# that no later failure can lose them; the only copy besides their hashes. Kept by --uninstall.
CREDENTIALS_FILE=$CONF_DIR/installer-credentials
# The log rotation's rules, read only by desktop-streamer-logrotate.service (hourly, its own
# state file), not by Debian's daily logrotate: see systemd/desktop-streamer-logrotate.service.
SHARE_DIR=$PREFIX/share/desktop-streamer
LOGROTATE_CONF=$SHARE_DIR/logrotate.conf
# Where versions before the timer put the rules; removed, or both rotators would handle the logs.
OLD_LOGROTATE_CONF=/etc/logrotate.d/desktop-streamer
LOGROTATE_SERVICE=desktop-streamer-logrotate.service
LOGROTATE_TIMER=desktop-streamer-logrotate.timer
# Persistent=true keeps the timer's last run here; systemd leaves it behind when the unit goes.
LOGROTATE_STAMP=/var/lib/systemd/timers/stamp-$LOGROTATE_TIMER
DEMO_XORG_CONF=/etc/X11/desktop-streamer-demo.conf
# One system user per service. The streamer's, `desktop-streamer`, has the group the services
# share (SHARED_GROUP: the logs, the streamer's config, the watchdog's alert history); the
# dashboard and the watchdog are members of it, and each has a group of its own for its secrets.
SERVICE_USER=desktop-streamer
SHARED_GROUP=$SERVICE_USER
WEB_USER=desktop-streamer-web
WATCHDOG_USER=desktop-streamer-watchdog
BINARIES=(desktop-streamer desktop-streamer-watchdog desktop-streamer-web desktop-streamer-monitor)
UNITS=(desktop-streamer.service desktop-streamer-watchdog.service desktop-streamer-web.service)
DEMO_UNITS=(desktop-streamer-demo-display.service desktop-streamer-demo-content.service)
# Drop-ins this script writes (and --uninstall removes); an operator's own drop-ins stay.
DROPIN_DISPLAY=10-display.conf
DROPIN_DEMO=20-demo.conf
DROPIN_UNITY=50-unity-optimization.conf
# What the services need at run time: GStreamer with capture (good: ximagesrc), encoders (ugly:
# x264enc; bad: openh264enc, vah264enc), HLS (bad: hlssink2), X (x); the system bus; logrotate;
# CA certificates for SMTP and webhooks over TLS. And polkit for the rule: POLKIT_PACKAGES.
RUNTIME_PACKAGES=(
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly gstreamer1.0-x dbus logrotate ca-certificates
)
# polkit's daemon: `polkitd` on Debian 12 and Ubuntu 23.04+, `policykit-1` on Ubuntu 22.04.
POLKIT_PACKAGES=(polkitd policykit-1)
# The first polkit that reads JavaScript rules (older ones read only .pkla files).
POLKIT_JS_VERSION=0.106
# VA-API (hardware H.264 encoding), only where a GPU is there (/dev/dri/renderD*).
VAAPI_PACKAGES=(gstreamer1.0-vaapi)
# --demo: a virtual two-monitor X display and a moving picture on it.
DEMO_PACKAGES=(xserver-xorg-core xserver-xorg-video-dummy x11-xserver-utils gstreamer1.0-tools)
# Building from source (only then).
BUILD_PACKAGES=(build-essential pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev)
MIN_RUST=1.92
DEFAULT_WAIT_SECONDS=120

usage() {
    cat <<USAGE
Usage: sudo ./install.sh [OPTION]...

Installs desktop-streamer and starts its services, or updates an installation. Safe to run
again: it changes only what is missing or different, and says so when nothing changed.

Options:
  --demo            also install a virtual two-monitor X display with a moving picture on its
                    second monitor (units desktop-streamer-demo-display and -content), for a
                    machine without a kiosk display: a VM, a server. Then open the dashboard.
  --display :N      the X display the streamer captures (default :0, the kiosk's usual
                    display); with --demo, the number of the virtual display. Written to a
                    drop-in ($DROPIN_DISPLAY); kept on later runs without this option.
  --bin-dir DIR     take the four binaries from DIR instead of building them (for example
                    binaries built on another Debian machine with 'cargo build --release').
                    Without it: build with cargo when Rust $MIN_RUST or newer is installed,
                    otherwise use the binaries already in target/release.
  --wait SECONDS    how long to wait for the stream to go live after starting (default
                    $DEFAULT_WAIT_SECONDS); 0 skips the wait.
  --uninstall       stop and remove the services, units, drop-ins, polkit rule, log rotation
                    (its timer and rules) and binaries; keep the configuration
                    ($CONF_DIR), the data ($STATE_DIR),
                    the logs ($LOG_DIR) and the users '$SERVICE_USER', '$WEB_USER'
                    and '$WATCHDOG_USER'.
                    Debian packages stay.
  --purge           like --uninstall, and also remove the configuration, data, logs, caches
                    and the service users. Harmless to run again.
  -h, --help        show this text.

What it does, in numbered steps: checks the system (Debian 12+, Ubuntu 22.04+ or a derivative of
them such as Linux Mint 21+ or LMDE 6+; systemd); installs the runtime packages (GStreamer and
its plugin sets, VA-API when /dev/dri has a GPU); gets the binaries; creates the user
'$SERVICE_USER' (the streamer), '$WEB_USER' and '$WATCHDOG_USER' and the directories; writes the example configuration where no file exists
(never overwrites one); generates the dashboard's admin password and an API token (stored
hashed, and written at once to $CREDENTIALS_FILE, readable by root only,
so that no later failure loses them; shown again at the end); installs the systemd units with
drop-ins from the config's unity_optimization (CPUQuota, MemoryMax, Nice, IO scheduling), the
polkit rule (on polkit older than $POLKIT_JS_VERSION, such as Ubuntu 22.04's, which cannot limit
a grant to our units, a root helper that does exactly our starts, stops and restarts) and the
log rotation (desktop-streamer-logrotate.timer, hourly); enables and starts the services and
the timer; waits until the streamer's health API says the stream is live; prints the
dashboard, HLS and health URLs.

The streamer runs as '$SERVICE_USER' and needs access to the kiosk's X display: see the
README, "The service user and the X display".
USAGE
}

src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step_no=0
step_name=""
hint=""
changes=0

step() {
    step_no=$((step_no + 1))
    step_name=$1
    hint=${2:-}
    printf '\n[%d] %s\n' "$step_no" "$step_name"
}
say() { printf '    %s\n' "$*"; }
changed() {
    changes=$((changes + 1))
    say "$*"
}
credentials_written=false
fail() {
    printf '\ninstall.sh: step %d (%s) failed: %s\n' "$step_no" "$step_name" "$1" >&2
    if [ -n "$hint" ]; then printf 'What to do: %s\n' "$hint" >&2; fi
    if $credentials_written; then
        printf 'The dashboard admin password and API token generated by this run are safe in %s\n(root only); the next run keeps them.\n' "$CREDENTIALS_FILE" >&2
    fi
    exit 1
}
trap 'fail "this command failed (exit status $?): $BASH_COMMAND"' ERR

demo=false uninstall=false purge=false
display="" bin_dir="" wait_seconds=$DEFAULT_WAIT_SECONDS
while [ $# -gt 0 ]; do
    case "$1" in
        --demo) demo=true ;;
        --display) [ $# -ge 2 ] || { echo "install.sh: --display needs a value such as :0" >&2; exit 2; }; display=$2; shift ;;
        --display=*) display=${1#*=} ;;
        --bin-dir) [ $# -ge 2 ] || { echo "install.sh: --bin-dir needs a directory" >&2; exit 2; }; bin_dir=$2; shift ;;
        --bin-dir=*) bin_dir=${1#*=} ;;
        --wait) [ $# -ge 2 ] || { echo "install.sh: --wait needs a number of seconds" >&2; exit 2; }; wait_seconds=$2; shift ;;
        --wait=*) wait_seconds=${1#*=} ;;
        --allow-any-unit)
            echo "install.sh: --allow-any-unit was removed: on polkit older than $POLKIT_JS_VERSION it let the services start ANY unit, a transient one running as root (systemd-run) included, so a flaw in the dashboard became root. On such a polkit install.sh now installs a small root helper that starts, stops and restarts only the three desktop-streamer units; run it without the option (README, 'Service control')" >&2
            exit 2 ;;
        --uninstall) uninstall=true ;;
        --purge) uninstall=true purge=true ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown option '$1' (see ./install.sh --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -n "$display" ] && ! [[ $display =~ ^:[0-9]+$ ]]; then
    echo "install.sh: --display '$display' is not a local X display such as :0 or :1" >&2
    exit 2
fi
[[ $wait_seconds =~ ^[0-9]+$ ]] || { echo "install.sh: --wait '$wait_seconds' is not a number of seconds" >&2; exit 2; }
if [ -n "$bin_dir" ]; then bin_dir=$(cd "$bin_dir" 2>/dev/null && pwd) || { echo "install.sh: --bin-dir: no such directory" >&2; exit 2; }; fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root: sudo $0 $*" >&2
    exit 1
fi

have_systemd() { [ -d /run/systemd/system ]; }

# Installs SRC as DEST with MODE and OWNER:GROUP unless DEST already has that content, mode and
# owner. Sets `installed` to true when it wrote something.
installed=false
put_file() {
    local src=$1 dest=$2 mode=$3 owner=${4:-root:root}
    installed=false
    if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c '%a %U:%G' "$dest")" = "$mode $owner" ]; then
        return 0
    fi
    install -D -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$src" "$dest"
    installed=true
    changed "installed $dest"
}

# Removes a file if it is there, saying so.
remove_file() {
    if [ -e "$1" ] || [ -L "$1" ]; then
        rm -f "$1"
        changed "removed $1"
    fi
}

# The text of FILE with `//` comments removed (outside strings), so keys can be read from the
# JSON-with-comments configuration files without a JSON tool.
strip_comments() {
    awk '{
        out = ""; in_str = 0; n = length($0)
        for (i = 1; i <= n; i++) {
            c = substr($0, i, 1)
            if (in_str) {
                out = out c
                if (c == "\\") { i++; out = out substr($0, i, 1) } else if (c == "\"") in_str = 0
            } else if (c == "\"") { in_str = 1; out = out c }
            else if (c == "/" && substr($0, i + 1, 1) == "/") break
            else out = out c
        }
        print out
    }' "$1"
}

# The value of the first "KEY": value in FILE (strings without their quotes), or DEFAULT.
# With SECTION, only inside the object "SECTION": { ... } (one level, as in the shipped files).
json_value() {
    local file=$1 key=$2 default=$3 section=${4:-} text value
    [ -r "$file" ] || { printf '%s' "$default"; return 0; }
    text=$(strip_comments "$file" | tr '\n' ' ')
    if [ -n "$section" ]; then
        text=$(printf '%s' "$text" | sed -n "s/.*\"$section\"[[:space:]]*:[[:space:]]*{\([^}]*\)}.*/\1/p")
    fi
    value=$(printf '%s' "$text" | sed -n "s/^[^\"]*\(\"[^\"]*\"[^\"]*\)*\"$key\"[[:space:]]*:[[:space:]]*\(\"[^\"]*\"\|[^,} ]*\).*/\2/p" | head -n1)
    value=${value#\"}
    value=${value%\"}
    printf '%s' "${value:-$default}"
}

# Takes root's control helper away (polkit 0.106 or newer needs none; --uninstall).
remove_control_helper() {
    if [ -e "$UNIT_DIR/$CONTROL_SOCKET" ] && have_systemd; then
        systemctl disable --now --quiet "$CONTROL_SOCKET" 2>/dev/null || true
    fi
    remove_file "$UNIT_DIR/$CONTROL_SOCKET"
    remove_file "$UNIT_DIR/$CONTROL_SERVICE"
    remove_file "$CONTROL_HELPER"
    rmdir "${CONTROL_HELPER%/*}" 2>/dev/null || true
    # Left by a socket unit stopped before it removed its file itself (RemoveOnStop=).
    remove_file /run/desktop-streamer-control.sock
}

# ---------------------------------------------------------------------------------------------
# --uninstall / --purge
# ---------------------------------------------------------------------------------------------
if $uninstall; then
    step "Stopping and disabling the services"
    if have_systemd; then
        # The watchdog first (it would restart what stops), all in one transaction.
        present=()
        for u in desktop-streamer-watchdog.service desktop-streamer-web.service desktop-streamer.service "${DEMO_UNITS[@]}" \
            "$LOGROTATE_TIMER" "$LOGROTATE_SERVICE" "$CONTROL_SOCKET"; do
            if [ -e "$UNIT_DIR/$u" ] || systemctl is-active --quiet "$u"; then present+=("$u"); fi
        done
        if [ ${#present[@]} -gt 0 ]; then
            systemctl disable --now --quiet "${present[@]}" 2>/dev/null || systemctl stop "${present[@]}" || true
            systemctl reset-failed "${present[@]}" 2>/dev/null || true
            changed "stopped and disabled ${present[*]}"
        fi
    fi
    step "Removing units, drop-ins, polkit rule, log rotation and binaries"
    for u in "${UNITS[@]}" "${DEMO_UNITS[@]}" "$LOGROTATE_SERVICE" "$LOGROTATE_TIMER"; do
        remove_file "$UNIT_DIR/$u"
        for d in "$DROPIN_DISPLAY" "$DROPIN_DEMO" "$DROPIN_UNITY"; do remove_file "$UNIT_DIR/$u.d/$d"; done
        rmdir "$UNIT_DIR/$u.d" 2>/dev/null || true
    done
    remove_file "$POLKIT_RULE"
    remove_file "$POLKIT_PKLA"
    remove_control_helper
    remove_file "$LOGROTATE_CONF"
    rmdir "$SHARE_DIR" 2>/dev/null || true
    remove_file "$OLD_LOGROTATE_CONF"
    remove_file "$LOGROTATE_STAMP"
    remove_file "$DEMO_XORG_CONF"
    for b in "${BINARIES[@]}"; do remove_file "$BIN_DIR/$b"; done
    if [ -d "$DOC_DIR" ]; then rm -rf "$DOC_DIR"; changed "removed $DOC_DIR"; fi
    if have_systemd; then
        systemctl daemon-reload
    fi
    if $purge; then
        step "Removing configuration, data, logs and the service user"
        # The demo content unit is DynamicUser=: its CacheDirectory= is /var/cache/private/NAME,
        # and /var/cache/NAME only a symbolic link to it.
        for d in "$CONF_DIR" "$STATE_DIR" "$LOG_DIR" "$CACHE_DIR" /var/log/desktop-streamer-demo \
            /var/cache/desktop-streamer-demo /var/cache/private/desktop-streamer-demo; do
            if [ -e "$d" ]; then rm -rf "$d"; changed "removed $d"; fi
        done
        # The members of the shared group first: userdel leaves a primary group with members.
        for u in "$WEB_USER" "$WATCHDOG_USER" "$SERVICE_USER"; do
            if id "$u" >/dev/null 2>&1; then
                userdel "$u"
                changed "removed the user $u"
            fi
        done
        if getent group "$CONTROL_GROUP" >/dev/null; then
            groupdel "$CONTROL_GROUP"
            changed "removed the group $CONTROL_GROUP"
        fi
    else
        say "kept $CONF_DIR, $STATE_DIR, $LOG_DIR and the users $SERVICE_USER, $WEB_USER, $WATCHDOG_USER (--purge removes them)"
    fi
    say "Debian packages stay installed (remove them with apt if nothing else needs them)"
    if [ "$changes" -eq 0 ]; then
        printf '\nNothing to remove: desktop-streamer is not installed.\n'
    else
        printf '\nUninstalled (%d changes).\n' "$changes"
    fi
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Install or update
# ---------------------------------------------------------------------------------------------
step "Checking the system" "install on Debian 12 or newer, Ubuntu 22.04 or newer, or a derivative of one of them (Linux Mint 21+, LMDE 6+, ...), booted with systemd"
[ -r /etc/os-release ] || fail "no /etc/os-release: cannot tell which system this is"
# shellcheck disable=SC1091
. /etc/os-release
# The Debian or Ubuntu release this system is, or is based on: derivatives name their base in
# ID_LIKE and its codename in UBUNTU_CODENAME (Linux Mint, Pop!_OS, elementary, Zorin) or
# DEBIAN_CODENAME (LMDE), else VERSION_CODENAME (Raspberry Pi OS).
ubuntu_release() {
    case "$1" in
        trusty) echo 14.04 ;; xenial) echo 16.04 ;; bionic) echo 18.04 ;; focal) echo 20.04 ;;
        jammy) echo 22.04 ;; kinetic) echo 22.10 ;; lunar) echo 23.04 ;; mantic) echo 23.10 ;;
        noble) echo 24.04 ;; oracular) echo 24.10 ;; plucky) echo 25.04 ;; questing) echo 25.10 ;;
        *) return 1 ;;
    esac
}
debian_release() {
    case "$1" in
        jessie) echo 8 ;; stretch) echo 9 ;; buster) echo 10 ;; bullseye) echo 11 ;;
        bookworm) echo 12 ;; trixie) echo 13 ;; forky) echo 14 ;; duke) echo 15 ;; sid) echo unstable ;;
        *) return 1 ;;
    esac
}
SUPPORTED="Debian 12 (bookworm) or newer, Ubuntu 22.04 (jammy) or newer, or a derivative based on one of them (such as Linux Mint 21 or LMDE 6)"
os_name=${PRETTY_NAME:-${NAME:-${ID:-this system}}}
base="" base_version=""
case " ${ID:-} ${ID_LIKE:-} " in
    " debian "*) base=Debian base_version=${VERSION_ID:-unstable} ;;
    " ubuntu "*) base=Ubuntu base_version=${VERSION_ID:-} ;;
    *" ubuntu "*)
        base=Ubuntu codename=${UBUNTU_CODENAME:-${VERSION_CODENAME:-}}
        base_version=$(ubuntu_release "$codename") ||
            fail "$os_name is based on Ubuntu, but on which release? UBUNTU_CODENAME='$codename' in /etc/os-release is not one this script knows. Supported: $SUPPORTED"
        ;;
    *" debian "*)
        base=Debian codename=${DEBIAN_CODENAME:-${VERSION_CODENAME:-}}
        base_version=$(debian_release "$codename") ||
            fail "$os_name is based on Debian, but on which release? DEBIAN_CODENAME='$codename' in /etc/os-release is not one this script knows. Supported: $SUPPORTED"
        ;;
    *) fail "$os_name is not supported: it is neither Debian nor Ubuntu nor based on them (ID=${ID:-?}, ID_LIKE=${ID_LIKE:-?} in /etc/os-release). Supported: $SUPPORTED" ;;
esac
# Major and minor as one number: 22.04 -> 2204, 12 -> 1200; Debian testing/unstable have none.
version_number() {
    local major=${1%%.*} minor=0
    case "$1" in *.*) minor=${1#*.} minor=${minor%%.*} ;; esac
    [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]] || return 1
    echo $((10#$major * 100 + 10#$minor))
}
case $base in
    Debian) oldest=1200 oldest_name="Debian 12" ;;
    Ubuntu) oldest=2204 oldest_name="Ubuntu 22.04" ;;
esac
based_on="$base $base_version"
[ "${ID:-}" = "${base,,}" ] || os_name="$os_name (based on $based_on)"
if [ "$base_version" = unstable ] && [ "$base" = Debian ]; then
    :
elif ! n=$(version_number "$base_version"); then
    fail "$os_name: cannot read its $base release from /etc/os-release (VERSION_ID='${VERSION_ID:-}'). Supported: $SUPPORTED"
elif [ "$n" -lt "$oldest" ]; then
    fail "$os_name is too old: $oldest_name or newer is needed. Supported: $SUPPORTED"
fi
have_systemd || fail "systemd is not running as the init system here (no /run/systemd/system)"
say "$os_name, systemd $(systemctl --version | awk 'NR == 1 {print $2}')"

step "Installing the runtime packages" "check the network and the apt sources (apt-get update), then run install.sh again"
wanted=("${RUNTIME_PACKAGES[@]}")
if compgen -G '/dev/dri/renderD*' >/dev/null; then
    wanted+=("${VAAPI_PACKAGES[@]}")
    vendors=$(cat /sys/class/drm/renderD*/device/vendor 2>/dev/null || true)
    case "$vendors" in *0x8086*) wanted+=(intel-media-va-driver i965-va-driver) ;; esac
    case "$vendors" in *0x1002* | *0x10de*) wanted+=(mesa-va-drivers) ;; esac
    say "GPU found in /dev/dri: VA-API packages included"
else
    say "no GPU in /dev/dri: software encoding (x264enc), no VA-API packages"
fi
if $demo; then wanted+=("${DEMO_PACKAGES[@]}"); fi
is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in "${wanted[@]}"; do
    is_installed "$p" || missing+=("$p")
done
polkit_missing=true
for p in "${POLKIT_PACKAGES[@]}"; do
    if is_installed "$p"; then polkit_missing=false; fi
done
if [ ${#missing[@]} -gt 0 ] || $polkit_missing; then
    apt-get update -qq
    if $polkit_missing; then
        # The first of the names this system's apt knows.
        polkit_package=""
        for p in "${POLKIT_PACKAGES[@]}"; do
            if apt-cache show "$p" >/dev/null 2>&1; then polkit_package=$p; break; fi
        done
        [ -n "$polkit_package" ] || fail "apt knows none of the polkit packages ${POLKIT_PACKAGES[*]}"
        missing+=("$polkit_package")
    fi
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$work/apt.log" 2>&1 ||
        { tail -n 20 "$work/apt.log" >&2; fail "apt-get install failed (its last lines are above)"; }
    changed "installed ${#missing[@]} packages"
else
    say "all ${#wanted[@]} packages present"
fi

step "Getting the binaries" "install Rust $MIN_RUST or newer (https://rustup.rs, as your own user) and run sudo ./install.sh again; or build with 'cargo build --release' on another Debian machine and pass --bin-dir DIR"
# The user who ran sudo builds (so target/ stays theirs) with their own toolchain.
builder=${SUDO_USER:-root}
cargo_bin=""
for c in "$(command -v cargo || true)" "$(getent passwd "$builder" | cut -d: -f6)/.cargo/bin/cargo"; do
    if [ -n "$c" ] && [ -x "$c" ]; then cargo_bin=$c; break; fi
done
as_builder() {
    if [ "$builder" = root ]; then "$@"; else runuser -u "$builder" -- env PATH="$(dirname "$cargo_bin"):$PATH" "$@"; fi
}
if [ -n "$bin_dir" ]; then
    from=$bin_dir
    say "using the binaries in $from (--bin-dir)"
elif [ -n "$cargo_bin" ] && version=$(as_builder "$cargo_bin" --version 2>/dev/null | awk '{print $2}') &&
    printf '%s\n%s\n' "$MIN_RUST" "${version%%-*}" | sort -V -C; then
    say "building release binaries with cargo $version (as $builder)"
    build_missing=()
    for p in "${BUILD_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || build_missing+=("$p")
    done
    # The dashboard embeds a front end built from npm packages (web-monitor/ui).
    if [ -f "$src_dir/web-monitor/ui/package.json" ] && ! command -v npm >/dev/null; then
        build_missing+=(nodejs npm)
    fi
    if [ ${#build_missing[@]} -gt 0 ]; then
        say "installing build packages ${build_missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${build_missing[@]}" >"$work/apt.log" 2>&1 ||
            { tail -n 20 "$work/apt.log" >&2; fail "apt-get install of the build packages failed"; }
    fi
    if [ -f "$src_dir/web-monitor/ui/package.json" ]; then
        (cd "$src_dir" && as_builder npm ci --prefix web-monitor/ui --no-audit --no-fund --loglevel=error) ||
            fail "npm ci in web-monitor/ui failed (see above)"
    fi
    (cd "$src_dir" && as_builder "$cargo_bin" build --release --locked --bins \
        -p desktop-streamer -p desktop-streamer-watchdog -p desktop-streamer-web) ||
        fail "cargo build failed (see above)"
    from=$src_dir/target/release
else
    from=$src_dir/target/release
    if [ -n "$cargo_bin" ]; then
        say "cargo ${version:-?} is older than $MIN_RUST: not building"
    else
        say "no Rust toolchain found: not building"
    fi
    say "using the binaries in $from"
fi
for b in "${BINARIES[@]}"; do
    [ -x "$from/$b" ] || fail "$from/$b is missing or not executable"
done
bins_changed=false
for b in "${BINARIES[@]}"; do
    put_file "$from/$b" "$BIN_DIR/$b" 755
    if $installed; then bins_changed=true; fi
done
put_file "$src_dir/README.md" "$DOC_DIR/README.md" 644
$bins_changed || say "binaries up to date in $BIN_DIR"

step "Creating the service users and directories" "see the message above; useradd and install(1) must work on this system"
ensure_user() {
    local user=$1 comment=$2
    if ! id "$user" >/dev/null 2>&1; then
        useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin \
            --comment "$comment" "$user"
        changed "created the system user $user"
    else
        say "user $user exists"
    fi
}
# Adds USER to GROUP; member_added says whether this run added any (a running service gets a
# new group only when it starts again).
member_added=false
ensure_member() {
    local user=$1 group=$2
    if ! id -nG "$user" | tr ' ' '\n' | grep -qx "$group"; then
        usermod -a -G "$group" "$user"
        changed "added $user to the group $group"
        member_added=true
    fi
}
ensure_user "$SERVICE_USER" "desktop-streamer streamer"
ensure_user "$WEB_USER" "desktop-streamer dashboard"
ensure_user "$WATCHDOG_USER" "desktop-streamer watchdog"
ensure_member "$WEB_USER" "$SHARED_GROUP"
ensure_member "$WATCHDOG_USER" "$SHARED_GROUP"
# The watchdog's unit runs it with the shared group as its primary one (its alert history is
# the dashboard's to read); its own group, for its secrets, then comes from being a member.
ensure_member "$WATCHDOG_USER" "$WATCHDOG_USER"
# VA-API needs the GPU's render node; the groups exist only where a GPU driver created them.
for g in render video; do
    [ -d /dev/dri ] || break
    if getent group "$g" >/dev/null; then ensure_member "$SERVICE_USER" "$g"; fi
done
# Each state directory belongs to its service's user before any unit starts, so systemd's
# StateDirectory= never has to change owners below it (it would, recursively, for a directory
# another user owns): /var/lib/desktop-streamer and what is in it to the dashboard, hls/ to the
# streamer, watchdog/ to the watchdog. The configuration directory is sticky and writable by
# the dashboard's group alone: it replaces cameras.yaml (which it owns) atomically, and can
# replace no other file there. The log directory is the services' shared one: each creates its
# own file there, of the shared group (set-group-ID), readable by the dashboard's log view.
ensure_dir() {
    local dir=$1 mode=$2 owner=$3
    if [ ! -d "$dir" ] || [ "$(stat -c '%a %U:%G' "$dir")" != "$mode $owner" ]; then
        install -d -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$dir"
        changed "directory $dir ($mode $owner)"
    fi
}
# Gives PATH (and, with -R, what is below it) the OWNER, when something there has another.
ensure_owner() {
    local owner=$1 path=$2 recurse=${3:-}
    [ -e "$path" ] || return 0
    local depth=(-maxdepth 0)
    [ "$recurse" = -R ] && depth=()
    if [ -n "$(find "$path" "${depth[@]}" \( ! -user "${owner%%:*}" -o ! -group "${owner##*:}" \) -print -quit)" ]; then
        chown -h $recurse "$owner" "$path"
        if [ -d "$path" ] && [ -n "$recurse" ]; then
            changed "owner of $path and all in it: $owner"
        else
            changed "owner of $path: $owner"
        fi
    fi
}
ensure_dir "$CONF_DIR" 1775 "root:$WEB_USER"
ensure_dir "$STATE_DIR" 755 "$WEB_USER:$WEB_USER"
ensure_dir "$LOG_DIR" 2770 "$SERVICE_USER:$SHARED_GROUP"
# An installation from before one user per service had every file as desktop-streamer's.
for f in "$STATE_DIR"/*; do
    case "${f##*/}" in
        hls | logrotate) ensure_owner "$SERVICE_USER:$SHARED_GROUP" "$f" -R ;;
        watchdog) ensure_owner "$WATCHDOG_USER:$SHARED_GROUP" "$f" -R ;;
        '*') ;;
        *) ensure_owner "$WEB_USER:$WEB_USER" "$f" -R ;;
    esac
done
ensure_owner "$WEB_USER:$SHARED_GROUP" "$LOG_DIR/desktop-streamer-web.log"
ensure_owner "$WATCHDOG_USER:$SHARED_GROUP" "$LOG_DIR/desktop-streamer-watchdog.log"

# Who owns each configuration file: each service's file is readable by its own group only; the
# streamer's by the shared group (the dashboard shows it, the watchdog reads nothing secret).
config_owner() {
    case "$1" in
        cameras.yaml) echo "$WEB_USER:$WEB_USER" ;;
        web-config.json) echo "root:$WEB_USER" ;;
        watchdog-config.json) echo "root:$WATCHDOG_USER" ;;
        *) echo "root:$SHARED_GROUP" ;;
    esac
}
step "Writing the configuration (existing files are kept)" "fix the file named above (check-config prints every problem with its line), then run install.sh again"
for f in "$src_dir"/config/etc/*; do
    name=$(basename "$f")
    dest=$CONF_DIR/$name
    if [ -e "$dest" ]; then
        say "kept    $dest"
    else
        owner=$(config_owner "$name")
        install -m 640 -o "${owner%%:*}" -g "${owner##*:}" "$f" "$dest"
        changed "created $dest"
    fi
    # Kept files get their service's owner too (an installation from before one user per
    # service had them all in the shared group, readable by every service), and no more than
    # 0640: they may hold secrets.
    ensure_owner "$(config_owner "$name")" "$dest"
    if [ -n "$(find "$dest" -maxdepth 0 -perm /o=rwx,g=wx)" ]; then
        chmod o-rwx,g-wx "$dest"
        changed "mode of $dest: $(stat -c %a "$dest") (no access for other users)"
    fi
done
# Checked as the service user: the services must be able to read what they will load.
check() {
    local user=$1 program=$2 file=$3
    if ! runuser -u "$user" -- "$BIN_DIR/$program" --config "$file" check-config >"$work/check.log" 2>&1; then
        sed 's/^/    /' "$work/check.log" >&2
        fail "$file has errors (listed above)"
    fi
}
check "$SERVICE_USER" desktop-streamer "$CONF_DIR/config.json"
check "$WATCHDOG_USER" desktop-streamer-watchdog "$CONF_DIR/watchdog-config.json"
check "$WEB_USER" desktop-streamer-web "$CONF_DIR/web-config.json"
say "configuration checked"

# Writes LINE... to CREDENTIALS_FILE, readable by root only from its first byte (mktemp creates
# it 0600; the rename replaces whatever was there, even a link another user put in the
# group-writable configuration directory).
write_credentials() {
    local tmp
    tmp=$(mktemp "$CREDENTIALS_FILE.XXXXXX")
    {
        echo "# desktop-streamer: generated by install.sh on $(date -R); stored only hashed elsewhere."
        echo "# Keep them somewhere safe, then delete this file."
        printf '%s\n' "$@"
    } >"$tmp"
    mv -fT "$tmp" "$CREDENTIALS_FILE"
    credentials_written=true
}

step "Dashboard password and API tokens" "see the message above; 'desktop-streamer-web set-password' sets a password by hand, 'desktop-streamer-web new-token LABEL' makes a token"
auth_file=$(json_value "$CONF_DIR/web-config.json" auth_file "$STATE_DIR/web-auth.json")
case "$auth_file" in /*) ;; *) auth_file=$CONF_DIR/$auth_file ;; esac
password="" token=""
web_cli=(runuser -u "$WEB_USER" -- "$BIN_DIR/desktop-streamer-web" --config "$CONF_DIR/web-config.json")
if [ -s "$auth_file" ]; then
    say "kept $auth_file (the password set before stays; 'desktop-streamer-web set-password' changes it)"
else
    password=$("${web_cli[@]}" set-password --generate 2>"$work/auth.log") || { cat "$work/auth.log" >&2; fail "set-password failed"; }
    # The password is the only copy now: on disk before anything else can fail.
    write_credentials "Dashboard admin password: $password"
    token=$("${web_cli[@]}" new-token installer --scope admin 2>"$work/auth.log") || { cat "$work/auth.log" >&2; fail "new-token failed"; }
    write_credentials "Dashboard admin password: $password" "API token 'installer':    $token"
    changed "generated the admin password and the API token 'installer' (stored hashed in $auth_file)"
    say "both written to $CREDENTIALS_FILE (root only), shown again at the end"
fi

# The watchdog asks the dashboard for the cameras' states; with a token of its own that keeps
# working when the dashboard's public_read is off. A read token: it can change nothing. It
# needs the password's step before it (the first token makes the credentials file).
watchdog_token_file=$(json_value "$CONF_DIR/watchdog-config.json" web_token_file "")
if [ -z "$watchdog_token_file" ]; then
    say "$CONF_DIR/watchdog-config.json names no web_token_file: the watchdog asks for the cameras without a token (enough while the dashboard's public_read is on)"
elif [ -s "$watchdog_token_file" ]; then
    say "kept $watchdog_token_file"
    ensure_owner "root:$WATCHDOG_USER" "$watchdog_token_file"
else
    # A token 'watchdog' whose file is gone can never be sent again: replaced.
    if "${web_cli[@]}" revoke-token watchdog >/dev/null 2>&1; then say "revoked the token 'watchdog' whose file was missing"; fi
    token_tmp=$(mktemp "$watchdog_token_file.XXXXXX")
    "${web_cli[@]}" new-token watchdog --scope read >"$token_tmp" 2>"$work/auth.log" || {
        rm -f "$token_tmp"
        cat "$work/auth.log" >&2
        fail "new-token watchdog failed"
    }
    chgrp "$WATCHDOG_USER" "$token_tmp"
    chmod 640 "$token_tmp"
    mv -fT "$token_tmp" "$watchdog_token_file"
    changed "created the read token 'watchdog' for the watchdog's camera check in $watchdog_token_file (root and the watchdog only)"
fi

step "Installing the systemd units, drop-ins, polkit rule and log rotation" "fix the unit or the drop-in named above ('systemd-analyze verify --man=no $UNIT_DIR/UNIT' shows the problem; an operator's own drop-in is in $UNIT_DIR/UNIT.d/), then run install.sh again"
declare -A restart=()
for u in "${UNITS[@]}"; do
    put_file "$src_dir/systemd/$u" "$UNIT_DIR/$u" 644
    if $installed; then restart[$u]=1; fi
    if $bins_changed; then restart[$u]=1; fi
done
# Unity coexistence: the streamer gets the CPU and memory limits and the lower priority the
# config's unity_optimization asks for, written before daemon-reload.
config=$CONF_DIR/config.json
unity_enabled=$(json_value "$config" enabled true unity_optimization)
cpu_quota=$(json_value "$config" cpu_quota_percent "" unity_optimization)
memory_mb=$(json_value "$config" memory_limit_mb "" unity_optimization)
unity_dropin=$UNIT_DIR/desktop-streamer.service.d/$DROPIN_UNITY
if [ "$unity_enabled" = true ]; then
    {
        echo "# Written by install.sh from unity_optimization in $config;"
        echo "# run install.sh again after changing those keys."
        echo "[Service]"
        if [[ $cpu_quota =~ ^[0-9]+$ ]] && [ "$cpu_quota" -gt 0 ]; then echo "CPUQuota=${cpu_quota}%"; fi
        if [[ $memory_mb =~ ^[0-9]+$ ]] && [ "$memory_mb" -gt 0 ]; then echo "MemoryMax=${memory_mb}M"; fi
        echo "# The kiosk application comes first."
        echo "Nice=5"
        echo "IOSchedulingClass=best-effort"
        echo "IOSchedulingPriority=6"
    } >"$work/unity.conf"
    put_file "$work/unity.conf" "$unity_dropin" 644
    if $installed; then restart[desktop-streamer.service]=1; fi
    say "streamer limits: CPUQuota=${cpu_quota:-none}% MemoryMax=${memory_mb:-none}M Nice=5 IO best-effort/6"
else
    if [ -e "$unity_dropin" ]; then
        remove_file "$unity_dropin"
        restart[desktop-streamer.service]=1
    fi
    say "unity_optimization is off: no CPU or memory limits for the streamer"
fi
write_display_dropin() {
    local unit=$1
    printf '# Written by install.sh --display.\n[Service]\nEnvironment=DISPLAY=%s\n' "$display" >"$work/display.conf"
    put_file "$work/display.conf" "$UNIT_DIR/$unit.d/$DROPIN_DISPLAY" 644
    if $installed; then restart[$unit]=1; fi
}
if [ -n "$display" ]; then write_display_dropin desktop-streamer.service; fi
if $demo; then
    put_file "$src_dir/systemd/demo/xorg-dummy.conf" "$DEMO_XORG_CONF" 644
    for u in "${DEMO_UNITS[@]}"; do
        put_file "$src_dir/systemd/demo/$u" "$UNIT_DIR/$u" 644
        if $installed; then restart[$u]=1; fi
        if [ -n "$display" ]; then write_display_dropin "$u"; fi
    done
    cat >"$work/demo.conf" <<'DEMO'
# Written by install.sh --demo: capture the virtual display once it is up.
[Unit]
Wants=desktop-streamer-demo-display.service desktop-streamer-demo-content.service
After=desktop-streamer-demo-display.service
DEMO
    put_file "$work/demo.conf" "$UNIT_DIR/desktop-streamer.service.d/$DROPIN_DEMO" 644
    if $installed; then restart[desktop-streamer.service]=1; fi
fi
# polkit reads JavaScript rules from 0.106 on; older ones (Ubuntu 22.04's 0.105) only .pkla
# files. The one this polkit ignores is removed (an upgrade of the system changes which).
polkit_version=$(pkaction --version 2>/dev/null | awk '{print $NF}') || true
[ -n "$polkit_version" ] || fail "cannot tell polkit's version: 'pkaction --version' printed nothing"
if printf '%s\n%s\n' "$POLKIT_JS_VERSION" "$polkit_version" | sort -V -C; then
    put_file "$src_dir/systemd/polkit/50-desktop-streamer.rules" "$POLKIT_RULE" 644
    remove_file "$POLKIT_PKLA"
    remove_control_helper
    say "polkit $polkit_version: JavaScript rule $POLKIT_RULE"
    control_helper=false
else
    remove_file "$POLKIT_RULE"
    remove_file "$POLKIT_PKLA"
    # A .pkla grant cannot name units: it would let the services start ANY unit, a transient one
    # running as root included. Root's helper does exactly our start, stop, restart and signals.
    if ! getent group "$CONTROL_GROUP" >/dev/null; then
        groupadd --system "$CONTROL_GROUP"
        changed "created the group $CONTROL_GROUP"
    fi
    member_added=false
    ensure_member "$WEB_USER" "$CONTROL_GROUP"
    ensure_member "$WATCHDOG_USER" "$CONTROL_GROUP"
    if $member_added; then
        restart[desktop-streamer-web.service]="it may now use the control helper"
        restart[desktop-streamer-watchdog.service]="it may now use the control helper"
    fi
    put_file "$src_dir/systemd/control/desktop-streamer-control" "$CONTROL_HELPER" 755
    for u in "$CONTROL_SOCKET" "$CONTROL_SERVICE"; do
        put_file "$src_dir/systemd/control/$u" "$UNIT_DIR/$u" 644
        if $installed; then restart[$CONTROL_SOCKET]=1; fi
    done
    say "polkit $polkit_version reads no JavaScript rules, and a .pkla file cannot be limited to our units: no polkit grant;"
    say "instead the dashboard and the watchdog ask root's helper $CONTROL_HELPER (socket $CONTROL_SOCKET),"
    say "which starts, stops and restarts the three desktop-streamer units and signals the streamer, and nothing else"
    control_helper=true
fi
# Log rotation: the rules, and the hourly timer with its oneshot service (nothing to restart
# when only the service changed: its next run reads the new file).
put_file "$src_dir/logrotate/desktop-streamer" "$LOGROTATE_CONF" 644
for u in "$LOGROTATE_SERVICE" "$LOGROTATE_TIMER"; do
    put_file "$src_dir/systemd/$u" "$UNIT_DIR/$u" 644
    if $installed; then restart[$u]=1; fi
done
if [ -e "$OLD_LOGROTATE_CONF" ]; then
    remove_file "$OLD_LOGROTATE_CONF"
    say "(Debian's daily logrotate no longer handles these logs: $LOGROTATE_TIMER does, hourly)"
fi
# Reloaded also when systemd holds an older version of a unit than its files (a run that failed
# before the reload, or a drop-in an operator changed since).
reload=false
if [ ${#restart[@]} -gt 0 ]; then reload=true; fi
for u in "${UNITS[@]}" "${DEMO_UNITS[@]}" "$LOGROTATE_SERVICE" "$LOGROTATE_TIMER" "$CONTROL_SOCKET"; do
    [ -e "$UNIT_DIR/$u" ] || continue
    if [ "$(systemctl show -p NeedDaemonReload --value "$u")" = yes ]; then reload=true; fi
done
if $reload; then
    # Checked before systemd loads them, so a rejected unit (with an operator's drop-in too) never
    # replaces a running one.
    for u in "${UNITS[@]}" "${DEMO_UNITS[@]}" "$LOGROTATE_SERVICE" "$LOGROTATE_TIMER" "$CONTROL_SOCKET"; do
        [ -e "$UNIT_DIR/$u" ] || continue
        # --man=no: a Documentation=man: page missing on a minimal system is no unit problem.
        systemd-analyze verify --man=no "$UNIT_DIR/$u" >"$work/verify.log" 2>&1 || { sed 's/^/    /' "$work/verify.log" >&2; fail "systemd rejects $u (why is above)"; }
    done
    systemctl daemon-reload
    say "systemd reloaded"
else
    say "systemd units and drop-ins unchanged: no reload needed"
fi

step "Enabling and starting the services and the log rotation timer" "look at 'systemctl status UNIT' and 'journalctl -u UNIT' for the unit named above"
all_units=()
if $demo || [ -e "$UNIT_DIR/${DEMO_UNITS[0]}" ]; then all_units+=("${DEMO_UNITS[@]}"); fi
# The timer is started like a service (active = waiting for its next run); its oneshot service
# is not: it is inactive between runs.
all_units+=("${UNITS[@]}" "$LOGROTATE_TIMER")
if $control_helper; then all_units+=("$CONTROL_SOCKET"); fi
for u in "${all_units[@]}"; do
    if ! systemctl is-enabled --quiet "$u"; then
        systemctl enable --quiet "$u"
        changed "enabled $u"
    fi
    if ! systemctl is-active --quiet "$u"; then
        # --no-block: the streamer reports ready after its first segment; the wait below says
        # more than systemctl's timeout would.
        systemctl reset-failed "$u" 2>/dev/null || true
        systemctl start --no-block "$u"
        changed "started $u"
    elif [ -n "${restart[$u]:-}" ]; then
        systemctl restart --no-block "$u"
        if [ "${restart[$u]}" = 1 ]; then
            changed "restarted $u (its unit or binary changed)"
        else
            changed "restarted $u (${restart[$u]})"
        fi
    else
        say "$u is running"
    fi
done

# Where the services listen, from their configuration files.
listen_of() {
    local value
    value=$(json_value "$1" listen "$2")
    printf '%s' "$value"
}
streamer_listen=$(listen_of "$CONF_DIR/config.json" 0.0.0.0:8888)
web_listen=$(listen_of "$CONF_DIR/web-config.json" 0.0.0.0:8080)
streamer_port=${streamer_listen##*:}
web_port=${web_listen##*:}
local_host() { case "${1%:*}" in 0.0.0.0 | "[::]" | "") echo 127.0.0.1 ;; *) echo "${1%:*}" ;; esac; }

# GET http://HOST:PORT/PATH with bash alone (no curl on a minimal system); prints the body.
http_get() {
    local host=$1 port=$2 path=$3 response
    exec 3<>"/dev/tcp/$host/$port" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: %s:%s\r\nConnection: close\r\n\r\n' "$path" "$host" "$port" >&3
    response=$(timeout 5 cat <&3) || { exec 3<&-; return 1; }
    exec 3<&-
    printf '%s' "${response#*$'\r\n\r\n'}"
}

state=""
if [ "$wait_seconds" -gt 0 ]; then
    step "Waiting for the stream to go live (at most ${wait_seconds} s)" "run 'journalctl -u desktop-streamer -n 50' and 'desktop-streamer-monitor status'; the README's \"The service user and the X display\" explains X access"
    host=$(local_host "$streamer_listen")
    deadline=$((SECONDS + wait_seconds))
    health=""
    while :; do
        for u in "${all_units[@]}"; do
            if systemctl is-failed --quiet "$u"; then
                journalctl -u "$u" -n 20 --no-pager >&2 || true
                fail "$u failed (its last log lines are above)"
            fi
        done
        health=$(http_get "$host" "$streamer_port" /api/health 2>/dev/null || true)
        state=$(printf '%s' "$health" | sed -n 's/.*"current_state":"\([a-z]*\)".*/\1/p')
        if [ "$state" = streaming ] || { [ "$state" = slate ] && ! $demo; }; then break; fi
        if [ $SECONDS -ge $deadline ]; then
            journalctl -u desktop-streamer -n 20 --no-pager >&2 || true
            fail "the stream is not live after ${wait_seconds} s (state: ${state:-no answer from $host:$streamer_port})"
        fi
        sleep 2
    done
    for u in "${all_units[@]}"; do
        systemctl is-active --quiet "$u" || fail "$u is $(systemctl is-active "$u" || true)"
    done
    if [ "$state" = slate ]; then
        reason=$(printf '%s' "$health" | sed -n 's/.*"source_problem":"\([^"]*\)".*/\1/p')
        say "the stream is live but shows the slate: ${reason:-the monitor cannot be captured}"
        say "give $SERVICE_USER access to the X display (README: \"The service user and the X display\")"
    else
        say "the stream is live"
    fi
fi

address=$(hostname -I 2>/dev/null | awk '{print $1}')
address=${address:-127.0.0.1}
url_host() { case "${1%:*}" in 0.0.0.0 | "[::]" | "") echo "$address" ;; *) echo "${1%:*}" ;; esac; }
sh=$(url_host "$streamer_listen")
wh=$(url_host "$web_listen")
printf '\n'
if [ "$changes" -eq 0 ]; then
    echo "Nothing changed: desktop-streamer was already installed, up to date and running."
else
    echo "desktop-streamer is installed and running ($changes changes)."
fi
cat <<URLS
  Dashboard:  http://$wh:$web_port/
  HLS:        http://$sh:$streamer_port/hls/desktop/playlist.m3u8
  Health:     http://$sh:$streamer_port/api/health
  Logs:       journalctl -u 'desktop-streamer*'  and  $LOG_DIR/
  Status:     desktop-streamer-monitor status
URLS
if [ -n "$password" ]; then
    cat <<SECRET

  Dashboard admin password: $password
  API token 'installer':    $token
  Both are stored hashed, and in $CREDENTIALS_FILE (root only) until you delete it.
SECRET
elif [ -e "$CREDENTIALS_FILE" ]; then
    printf '\n  The dashboard admin password and API token generated by an earlier run are in\n  %s (root only): sudo cat %s\n' "$CREDENTIALS_FILE" "$CREDENTIALS_FILE"
fi
if [ -n "$password" ] || [ -e "$CREDENTIALS_FILE" ]; then
    echo "  Keep them somewhere safe, then delete that file. Set a new password with"
    echo "  'sudo -u $WEB_USER desktop-streamer-web --config $CONF_DIR/web-config.json set-password'."
fi
