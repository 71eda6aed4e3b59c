//! `config.json`: the desktop streamer. Keys and meanings follow the seed file of the
//! "Desktop Streamer with Self-Healing" system, so existing files load unchanged.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::load::{ConfigFile, Format};
use crate::secret::Secret;
use crate::validate::Validator;

/// Encoders `auto` may choose from, in the order it tries them.
pub const KNOWN_ENCODERS: &[&str] = &["vaapih264enc", "vah264enc", "x264enc", "openh264enc"];

pub const DEFAULT_FPS: u32 = 15;
pub const DEFAULT_WIDTH: u32 = 1280;
pub const DEFAULT_HEIGHT: u32 = 720;
pub const DEFAULT_BITRATE_KBPS: u32 = 2000;
pub const DEFAULT_KEYFRAME_INTERVAL_S: u32 = 2;
pub const DEFAULT_SEGMENT_DURATION_S: u32 = 2;
/// Not under /tmp: systemd's PrivateTmp would hide it from the other services.
pub const DEFAULT_OUTPUT_DIR: &str = "/var/lib/desktop-streamer/hls";
pub const DEFAULT_MAX_RESTARTS: u32 = 15;
pub const DEFAULT_RESTART_DELAY_S: u32 = 60;
pub const DEFAULT_MAX_ERRORS: u32 = 10;
pub const DEFAULT_ERROR_WINDOW_S: u32 = 600;
pub const DEFAULT_ENCODER: &str = "auto";
pub const DEFAULT_SCREEN: u32 = 1;
pub const DEFAULT_FROZEN_AFTER_S: u32 = 60;
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8888";
pub const DEFAULT_MAX_WEBRTC_VIEWERS: u32 = 10;
/// The one UDP port all WebRTC media goes through (MediaMTX's WebRTC port is 8189; 8889 sits
/// beside the health port 8888).
pub const DEFAULT_WEBRTC_UDP_PORT: u16 = 8889;
/// WebRTC media over TCP (ICE-TCP), for viewers whose network lets no UDP through: the same
/// number as the UDP port, so a firewall rule names one port for both.
pub const DEFAULT_WEBRTC_TCP_PORT: u16 = 8889;

/// The streamer's whole configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamerConfig {
    /// Frames per second captured and encoded. Default 15; 1..=120.
    pub fps: u32,
    /// Width of the stream in pixels; the monitor is scaled to fit, keeping its aspect ratio
    /// (bars fill the rest). Default 1280; even, 16..=7680.
    pub width: u32,
    /// Height of the stream in pixels. Default 720; even, 16..=4320.
    pub height: u32,
    /// Constant video bitrate in kbit/s. Default 2000; 100..=100000.
    pub bitrate: u32,
    /// Seconds between keyframes. Default 2; 1..=60, at most `segment_duration`.
    pub keyframe_interval: u32,
    /// Target length of an HLS segment in seconds (EXT-X-TARGETDURATION). Default 2; 1..=30.
    pub segment_duration: u32,
    /// Directory for segments and the playlist. Default /var/lib/desktop-streamer/hls.
    pub output_dir: PathBuf,
    /// In-process rebuilds in a row, each failing, after which the state is reported as
    /// `failing`; rebuilding still goes on at the `restart_delay` cap. Default 15.
    pub max_restarts: u32,
    /// Longest wait between rebuild attempts in seconds; repeated failures back off
    /// exponentially from one second up to this cap. Default 60; 1..=3600.
    pub restart_delay: u32,
    /// Pipeline errors within `error_window` after which the process exits non-zero so systemd
    /// starts a fresh one. Default 10; 1..=1000.
    pub max_errors: u32,
    /// Seconds over which `max_errors` are counted. Default 600; 10..=86400.
    pub error_window: u32,
    /// `auto` (hardware first, then software) or a GStreamer H.264 encoder element name.
    /// Default `auto`.
    pub encoder: String,
    /// Which monitor to capture, counted from 0 in RandR's order. Default 1 (the second).
    pub screen: u32,
    /// Selects the monitor by RandR output name (`HDMI-1`) instead of `screen`. Default none.
    pub monitor: Option<String>,
    /// Seconds without any change in the captured picture after which the health API reports
    /// frozen content; 0 turns the check off. Default 60.
    pub frozen_after_seconds: u32,
    /// Seconds without an encoded buffer that count as a stall. Default none, meaning
    /// 2 × `segment_duration`.
    pub stall_timeout_seconds: Option<u32>,
    /// Address of the health API and HLS server. Default 0.0.0.0:8888.
    pub listen: SocketAddr,
    /// WebRTC (WHEP) viewers at once; the next one is answered 503. 0 turns WHEP off. Read at
    /// each new viewer, so a reload applies to the next one. Default 10; 0..=100.
    pub max_webrtc_viewers: u32,
    /// The UDP port every WebRTC viewer's media goes through (one firewall rule: allow this
    /// port). 0 = any free port (the tests). Default 8889.
    pub webrtc_udp_port: u16,
    /// The TCP port WebRTC media may go through instead (ICE-TCP, RFC 6544: a passive TCP
    /// candidate on each address), for browsers that cannot reach the UDP port; browsers
    /// prefer UDP when both work. 0 = any free port (the tests). Default 8889 (TCP).
    pub webrtc_tcp_port: u16,
    /// The addresses WebRTC media is offered on: the UDP port is bound on each and each is a
    /// host candidate. Default none, meaning every address of the machine's interfaces
    /// (loopback included, so a browser on the kiosk itself connects; link-local IPv6 left
    /// out), as found at start.
    pub webrtc_addresses: Option<Vec<IpAddr>>,
    /// STUN and TURN servers for viewers' browsers, handed to them in the WHEP answer's `Link`
    /// headers (rel="ice-server", as the WHEP draft describes): STUN lets a browser behind NAT
    /// learn its public address, TURN relays its media when no direct path exists (say, UDP
    /// leaves the viewer's network only through TURN on TCP or TLS). The streamer itself needs
    /// none: it answers on its own addresses. Default none.
    pub webrtc_ice_servers: Vec<IceServer>,
    /// Host names the streamer's HTTP server answers to besides any IP address, `localhost`
    /// and this machine's name (and `NAME.local`): a name, `.example.com` for every name
    /// under a domain, or `*` for any. Another name is refused (403): DNS rebinding. Default
    /// none.
    pub allowed_hosts: Vec<String>,
    /// Origins whose web pages may read the stream and the API across origins (CORS), e.g.
    /// `["https://signage.example.com"]`, or `["*"]` for every page on the web. Default
    /// none: the dashboard (which serves the stream from its own origin) and native players
    /// (VLC, ffmpeg, mpv) need none, and no other web page a LAN user opens can read the
    /// kiosk's screen.
    pub cors_origins: Vec<String>,
    /// A file holding a token (at least 16 characters) that reading the stream then needs:
    /// the playlists, segments, parts and WHEP, as `Authorization: Bearer TOKEN` or as the
    /// password in the URL (`http://viewer:TOKEN@kiosk:8888/hls/desktop/playlist.m3u8`, for
    /// VLC, ffmpeg and mpv). Read at each request. The dashboard then needs the same file as
    /// its `streamer_token_file`. Default none: the stream is open to whoever the host and
    /// origin checks let in. The health API and `/metrics` stay open either way.
    pub stream_token_file: Option<PathBuf>,
    pub live_streaming: LiveStreaming,
    pub unity_optimization: UnityOptimization,
    pub real_time: RealTime,
    pub monitoring: Monitoring,
    pub performance: Performance,
}

impl Default for StreamerConfig {
    fn default() -> Self {
        StreamerConfig {
            fps: DEFAULT_FPS,
            width: DEFAULT_WIDTH,
            height: DEFAULT_HEIGHT,
            bitrate: DEFAULT_BITRATE_KBPS,
            keyframe_interval: DEFAULT_KEYFRAME_INTERVAL_S,
            segment_duration: DEFAULT_SEGMENT_DURATION_S,
            output_dir: PathBuf::from(DEFAULT_OUTPUT_DIR),
            max_restarts: DEFAULT_MAX_RESTARTS,
            restart_delay: DEFAULT_RESTART_DELAY_S,
            max_errors: DEFAULT_MAX_ERRORS,
            error_window: DEFAULT_ERROR_WINDOW_S,
            encoder: DEFAULT_ENCODER.to_owned(),
            screen: DEFAULT_SCREEN,
            monitor: None,
            frozen_after_seconds: DEFAULT_FROZEN_AFTER_S,
            stall_timeout_seconds: None,
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            max_webrtc_viewers: DEFAULT_MAX_WEBRTC_VIEWERS,
            webrtc_udp_port: DEFAULT_WEBRTC_UDP_PORT,
            webrtc_tcp_port: DEFAULT_WEBRTC_TCP_PORT,
            webrtc_addresses: None,
            webrtc_ice_servers: Vec::new(),
            allowed_hosts: Vec::new(),
            cors_origins: Vec::new(),
            stream_token_file: None,
            live_streaming: LiveStreaming::default(),
            unity_optimization: UnityOptimization::default(),
            real_time: RealTime::default(),
            monitoring: Monitoring::default(),
            performance: Performance::default(),
        }
    }
}

/// One entry of `webrtc_ice_servers`, as a browser's `RTCIceServer` takes it.
///
/// The credential is a secret in every place but one: it is never logged, never in the health
/// API or `check-config`'s output (it shows as `***`), and reaches only the browsers that
/// start a WebRTC session, which need it to use the TURN server. Give viewers a TURN account
/// of their own (or short-lived credentials), not one that administers the TURN server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IceServer {
    /// `stun:host[:port]`, `stuns:…`, `turn:host[:port][?transport=udp|tcp]` or `turns:…`
    /// (RFC 7064, RFC 7065): one URL or a list of them (the same server's ways in).
    #[serde(deserialize_with = "one_or_many")]
    pub urls: Vec<String>,
    /// The TURN username. Needed for `turn:`/`turns:`; STUN takes none.
    pub username: Option<String>,
    /// The TURN password (a long-term credential). Needed for `turn:`/`turns:`.
    pub credential: Option<Secret>,
}

impl IceServer {
    /// Whether any of its URLs is a TURN server (which needs a username and a credential).
    pub fn is_turn(&self) -> bool {
        self.urls.iter().any(|u| ice_scheme(u).is_some_and(|s| s.starts_with("turn")))
    }
}

/// The scheme of an ICE server URL (`stun`, `stuns`, `turn`, `turns`), lowercased, if it is one.
fn ice_scheme(url: &str) -> Option<String> {
    let (scheme, _) = url.split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    ["stun", "stuns", "turn", "turns"].contains(&scheme.as_str()).then_some(scheme)
}

/// What is wrong with an ICE server URL, if anything.
fn ice_url_problem(url: &str) -> Option<String> {
    const EXAMPLE: &str = "such as stun:stun.example.net:3478 or turn:turn.example.net:3478?transport=udp";
    let Some(scheme) = ice_scheme(url) else {
        return Some(format!("must be a stun:, stuns:, turn: or turns: URL, {EXAMPLE}"));
    };
    let rest = &url[scheme.len() + 1..];
    let (host_port, query) = rest.split_once('?').map_or((rest, None), |(h, q)| (h, Some(q)));
    if host_port.starts_with("//") {
        return Some(format!("takes no // after {scheme}: (RFC 7064), {EXAMPLE}"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ',' | ';' | '@')) {
        return Some(format!("must not contain spaces, quotes, <, >, comma, semicolon or @, {EXAMPLE}"));
    }
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(h, _)| h).unwrap_or(""),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    if host.is_empty() {
        return Some(format!("names no host, {EXAMPLE}"));
    }
    if let Some((_, port)) = host_port.rsplit_once(':').filter(|_| !host_port.ends_with(']'))
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Some(format!("has port {port:?}; a port is 1..=65535, {EXAMPLE}"));
    }
    match (scheme.starts_with("turn"), query) {
        (_, None) => None,
        (true, Some("transport=udp" | "transport=tcp")) => None,
        (true, Some(q)) => Some(format!("has ?{q}; a TURN URL takes only ?transport=udp or ?transport=tcp")),
        (false, Some(q)) => Some(format!("has ?{q}; a STUN URL takes no query")),
    }
}

/// `"url"` or `["url", …]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(u) => vec![u],
        OneOrMany::Many(v) => v,
    })
}

/// `live_streaming`: the playlist window and disk-pressure cleanup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveStreaming {
    /// Segments in the live playlist window. Default 5; 3..=100 (and never shorter than three
    /// target durations).
    pub max_segments: u32,
    /// Window under emergency disk pressure. Default 2; 1..=`max_segments` (raised if needed
    /// so the playlist still spans three target durations).
    pub emergency_segments: u32,
    /// Output filesystem use (%) at which old segments and orphans are removed first.
    /// Default 70; 1..=99.
    pub cleanup_threshold_percent: u32,
    /// Output filesystem use (%) at which the window shrinks to `emergency_segments`.
    /// Default 85; above `cleanup_threshold_percent`, at most 100.
    pub emergency_cleanup_threshold_percent: u32,
}

impl Default for LiveStreaming {
    fn default() -> Self {
        LiveStreaming {
            max_segments: 5,
            emergency_segments: 2,
            cleanup_threshold_percent: 70,
            emergency_cleanup_threshold_percent: 85,
        }
    }
}

/// `unity_optimization`: limits that keep the stream from starving the kiosk application.
/// The installer turns them into systemd resource controls for the streamer unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UnityOptimization {
    /// Whether the limits below are applied. Default true.
    pub enabled: bool,
    /// GPU memory in MB the machine may use before the watchdog warns. Default 1024.
    pub gpu_memory_limit_mb: u32,
    /// CPU the streamer may use, in percent of one core (systemd CPUQuota). Default 30;
    /// 1..=1000.
    pub cpu_quota_percent: u32,
    /// Memory the streamer may use in MB (systemd MemoryMax). Default 800; 64..=65536.
    pub memory_limit_mb: u32,
}

impl Default for UnityOptimization {
    fn default() -> Self {
        UnityOptimization { enabled: true, gpu_memory_limit_mb: 1024, cpu_quota_percent: 30, memory_limit_mb: 800 }
    }
}

/// `real_time`: latency over completeness.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RealTime {
    /// Whether the settings below apply. Default false.
    pub enabled: bool,
    /// Measured frame rate below which the health API reports the stream as degraded.
    /// Default none (off).
    pub min_fps: Option<u32>,
    /// Seconds of frames queued before the encoder. Default 0.1; 0.01..=5.
    pub buffer_size: f64,
    /// Drop the oldest frames when the encoder falls behind, instead of slowing capture.
    /// Default true.
    pub drop_frames: bool,
}

impl Default for RealTime {
    fn default() -> Self {
        RealTime { enabled: false, min_fps: None, buffer_size: 0.1, drop_frames: true }
    }
}

/// `monitoring`: the streamer's own health bookkeeping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Monitoring {
    /// Seconds between health samples (disk use, memory). Default 30; 1..=3600.
    pub check_interval_seconds: u32,
    /// Health samples kept in memory for the API. Default 1000; 10..=100000.
    pub health_metrics_history_size: u32,
    /// Errors and restarts (with reasons) kept for the API. Default 100; 10..=10000.
    pub error_events_history_size: u32,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring { check_interval_seconds: 30, health_metrics_history_size: 1000, error_events_history_size: 100 }
    }
}

/// `performance`: encoder tuning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Performance {
    /// No B-frames, zero-latency tuning. Default true.
    pub low_latency_mode: bool,
    /// Whether `encoder: auto` tries hardware encoders first. Default true.
    pub hardware_acceleration: bool,
    /// Encoder threads; 0 lets the encoder choose. Default 2; 0..=64.
    pub thread_count: u32,
}

impl Default for Performance {
    fn default() -> Self {
        Performance { low_latency_mode: true, hardware_acceleration: true, thread_count: 2 }
    }
}

impl StreamerConfig {
    /// How long without an encoded buffer counts as a stall.
    pub fn stall_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.stall_timeout_seconds.unwrap_or(2 * self.segment_duration)))
    }
}

impl ConfigFile for StreamerConfig {
    const FILE_NAME: &'static str = "config.json";
    const FORMAT: Format = Format::Json;
    const LEGACY_KEYS: &'static [(&'static str, &'static str)] = &[
        ("live_streaming.enabled", "the stream is always live"),
        (
            "unity_optimization.disk_cleanup_threshold_percent",
            "live_streaming.cleanup_threshold_percent sets the cleanup threshold",
        ),
        (
            "unity_optimization.emergency_cleanup_threshold_percent",
            "live_streaming.emergency_cleanup_threshold_percent sets the emergency threshold",
        ),
        ("real_time.target_latency_ms", "latency follows from segment_duration and the playlist window"),
        ("real_time.sync_tolerance_ms", "the stream has no audio to keep in sync"),
        ("monitoring.log_rotation_mb", "logrotate/desktop-streamer rotates the logs"),
        ("performance.buffer_size", "real_time.buffer_size sets the queue before the encoder"),
    ];

    fn validate(&self, v: &mut Validator<'_>) {
        v.range("fps", self.fps, 1..=120);
        v.range("width", self.width, 16..=7680);
        v.range("height", self.height, 16..=4320);
        for (key, n) in [("width", self.width), ("height", self.height)] {
            if n % 2 != 0 {
                v.error(key, "must be even (H.264 with 4:2:0 colour needs even sizes)");
            }
        }
        v.range("bitrate", self.bitrate, 100..=100_000);
        v.range("keyframe_interval", self.keyframe_interval, 1..=60);
        v.range("segment_duration", self.segment_duration, 1..=30);
        if self.keyframe_interval > self.segment_duration {
            v.error(
                "keyframe_interval",
                format!(
                    "must be at most segment_duration ({} s): segments can only split on keyframes",
                    self.segment_duration
                ),
            );
        } else if self.keyframe_interval > 0 && !self.segment_duration.is_multiple_of(self.keyframe_interval) {
            v.warn(
                "keyframe_interval",
                format!(
                    "segment_duration ({} s) is not a multiple of it, so segments will be uneven",
                    self.segment_duration
                ),
            );
        }
        if self.output_dir.as_os_str().is_empty() || !self.output_dir.is_absolute() {
            v.error("output_dir", "must be an absolute directory path");
        } else if self.output_dir.starts_with("/tmp") {
            v.warn(
                "output_dir",
                "is under /tmp; services with PrivateTmp cannot see it (default /var/lib/desktop-streamer/hls)",
            );
        }
        v.range("restart_delay", self.restart_delay, 1..=3600);
        v.range("max_errors", self.max_errors, 1..=1000);
        v.range("error_window", self.error_window, 10..=86_400);
        if self.encoder.trim().is_empty() || self.encoder.contains(|c: char| c.is_whitespace() || c == '!') {
            v.error(
                "encoder",
                format!("must be `auto` or one GStreamer element name such as {}", KNOWN_ENCODERS.join(", ")),
            );
        }
        v.range("screen", self.screen, 0..=15);
        if let Some(m) = &self.monitor {
            v.non_empty("monitor", m, "a RandR output name such as HDMI-1, or leave the key out");
        }
        v.range("frozen_after_seconds", self.frozen_after_seconds, 0..=86_400);
        v.range("max_webrtc_viewers", self.max_webrtc_viewers, 0..=100);
        if let Some(addresses) = &self.webrtc_addresses {
            if addresses.is_empty() {
                v.error("webrtc_addresses", "must list at least one address, or leave the key out for all of them");
            }
            for (i, a) in addresses.iter().enumerate() {
                if a.is_unspecified() || a.is_multicast() {
                    v.error(
                        &format!("webrtc_addresses[{i}]"),
                        "must be an address of this machine that browsers can reach, not a wildcard or multicast one",
                    );
                } else if addresses[..i].contains(a) {
                    v.error(&format!("webrtc_addresses[{i}]"), "is listed twice");
                }
            }
        }
        v.host_names("allowed_hosts", &self.allowed_hosts);
        if self.stream_token_file.as_ref().is_some_and(|p| !p.is_absolute()) {
            v.error("stream_token_file", "must be an absolute file path");
        }
        for (i, origin) in self.cors_origins.iter().enumerate() {
            if origin != "*" && !crate::web::is_origin(origin) {
                v.error(
                    &format!("cors_origins[{i}]"),
                    "must be an origin such as https://signage.example.com (http or https, a host, an optional \
                     port, no path) or *",
                );
            }
        }
        for (i, server) in self.webrtc_ice_servers.iter().enumerate() {
            let at = format!("webrtc_ice_servers[{i}]");
            if server.urls.is_empty() {
                v.error(&format!("{at}.urls"), "must name at least one stun:, stuns:, turn: or turns: URL");
            }
            // `urls` may be one string: then its problem is the key's own.
            let one = v.document().get(&format!("{at}.urls")).is_some_and(serde_json::Value::is_string);
            for (j, url) in server.urls.iter().enumerate() {
                if let Some(problem) = ice_url_problem(url) {
                    v.error(&if one { format!("{at}.urls") } else { format!("{at}.urls[{j}]") }, problem);
                }
            }
            // They travel to browsers in an HTTP header.
            let text_problem = |t: &str| t.chars().any(|c| c.is_control() || !c.is_ascii());
            let printable = "must be printable ASCII (it reaches browsers in an HTTP header)";
            if server.username.as_deref().is_some_and(text_problem) {
                v.error(&format!("{at}.username"), printable);
            }
            if server.credential.as_ref().is_some_and(|c| text_problem(c.expose())) {
                v.error(&format!("{at}.credential"), printable);
            }
            let has_user = server.username.as_deref().is_some_and(|u| !u.is_empty());
            let has_credential = server.credential.as_ref().is_some_and(|c| !c.is_empty());
            // Named at the key itself, never at the server (whose value holds the credential).
            let needs = "a TURN server needs a username and a credential (browsers cannot use TURN without them)";
            if server.is_turn() && !has_user {
                v.error(&format!("{at}.username"), needs);
            } else if server.is_turn() && !has_credential {
                v.error(&format!("{at}.credential"), needs);
            } else if !server.is_turn() && (has_user || has_credential) {
                let key = if has_user { "username" } else { "credential" };
                v.warn(
                    &format!("{at}.{key}"),
                    "a STUN server takes no username or credential; they are not sent to browsers",
                );
            }
        }
        if let Some(s) = self.stall_timeout_seconds {
            v.range("stall_timeout_seconds", s, self.segment_duration..=600);
        }

        let ls = &self.live_streaming;
        v.range("live_streaming.max_segments", ls.max_segments, 3..=100);
        v.range("live_streaming.emergency_segments", ls.emergency_segments, 1..=ls.max_segments.max(1));
        v.range("live_streaming.cleanup_threshold_percent", ls.cleanup_threshold_percent, 1..=99);
        v.range(
            "live_streaming.emergency_cleanup_threshold_percent",
            ls.emergency_cleanup_threshold_percent,
            ls.cleanup_threshold_percent.saturating_add(1)..=100,
        );

        let uo = &self.unity_optimization;
        v.range("unity_optimization.cpu_quota_percent", uo.cpu_quota_percent, 1..=1000);
        v.range("unity_optimization.memory_limit_mb", uo.memory_limit_mb, 64..=65_536);

        let rt = &self.real_time;
        if let Some(min) = rt.min_fps {
            v.range("real_time.min_fps", min, 1..=self.fps.max(1));
        }
        v.range("real_time.buffer_size", rt.buffer_size, 0.01..=5.0);

        let m = &self.monitoring;
        v.range("monitoring.check_interval_seconds", m.check_interval_seconds, 1..=3600);
        v.range("monitoring.health_metrics_history_size", m.health_metrics_history_size, 10..=100_000);
        v.range("monitoring.error_events_history_size", m.error_events_history_size, 10..=10_000);

        v.range("performance.thread_count", self.performance.thread_count, 0..=64);
    }
}
