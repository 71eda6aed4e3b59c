//! On-demand preview: one JPEG of what a camera shows now, grabbed through GStreamer.
//!
//! The probes prove that video arrives; people also want to see it. GStreamer decodes
//! everything a camera may send (H.264/H.265 over RTSP or RTSPS, MJPEG streams, JPEG
//! snapshots) with one pipeline:
//! `uridecodebin ! videoconvert ! videoscale ! capsfilter ! jpegenc ! appsink`, the filter
//! asking for RGB (see [`jpeg_input`]) at the size wanted.
//! The source is set up through `source-setup`: `rtspsrc` with `protocols=tcp` (cameras
//! behind NAT and firewalls rarely pass UDP) and `souphttpsrc`, both given the credentials
//! as `user-id`/`user-pw`, never in the location, so no GStreamer log line carries them.
//! For a camera with `verify_tls: false` `souphttpsrc` gets `ssl-strict=false`, so a
//! self-signed camera that the probes accept can be previewed too.
//! The first decoded frame is taken, the pipeline goes to Null on every path, and the
//! whole grab has one deadline.
//!
//! [`PreviewCache`] keeps each camera's picture (or error) for a few seconds and lets
//! concurrent requests for one camera share a single grab, so reloading the page or ten
//! people looking at once do not hammer the camera. A grab runs in its own task: a request
//! that is cancelled (its client went away) leaves it running to its deadline, and the next
//! request for that camera joins it instead of opening another session. At most
//! [`DEFAULT_MAX_GRABS`] grabs run at once over all cameras; beyond that a request is told to
//! come back ([`PreviewError::Busy`]) rather than queued, so a loop of requests for many
//! cameras opens no more sessions than that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ds_config::redact::mask_url_credentials;
use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How long a grab may take by default, connection to encoded picture.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default widest picture: none, a grab is the camera's full picture (the thumbnails of the
/// heartbeats are the small ones).
pub const DEFAULT_MAX_WIDTH: Option<u32> = None;
/// Default number of grabs that may run at once, over all cameras.
pub const DEFAULT_MAX_GRABS: usize = 2;
/// Default time a picture (or an error) is reused.
pub const DEFAULT_CACHE_FOR: Duration = Duration::from_secs(5);
/// JPEG quality of the preview (jpegenc's 0..=100).
const JPEG_QUALITY: i32 = 85;
/// How often the grab loop checks the bus while waiting for a frame.
const POLL: Duration = Duration::from_millis(50);
/// URL schemes a preview can be grabbed from.
const SCHEMES: &[&str] = &["rtsp", "rtsps", "http", "https"];

/// How previews are grabbed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviewOptions {
    /// The whole grab's deadline. Default 10 s.
    pub timeout: Duration,
    /// Frames wider than this are scaled down (aspect ratio kept); `None`: full size.
    /// Default `None`.
    pub max_width: Option<u32>,
    /// How long [`PreviewCache`] reuses a result. Default 5 s.
    pub cache_for: Duration,
    /// `false`: an `https://` camera's certificate is accepted whatever it is (the camera's
    /// `verify_tls`). Default true. [`PreviewCache::get`] sets it per camera.
    pub verify_tls: bool,
    /// How many grabs [`PreviewCache`] runs at once over all cameras. Default 2.
    pub max_grabs: usize,
}

impl Default for PreviewOptions {
    fn default() -> Self {
        PreviewOptions {
            timeout: DEFAULT_TIMEOUT,
            max_width: DEFAULT_MAX_WIDTH,
            cache_for: DEFAULT_CACHE_FOR,
            verify_tls: true,
            max_grabs: DEFAULT_MAX_GRABS,
        }
    }
}

/// One grabbed picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preview {
    /// A complete JPEG file.
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// When the grab started (UTC).
    pub taken_at: jiff::Timestamp,
}

/// Why no picture came. URLs in it have their password masked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PreviewError {
    #[error("no picture from {url} within {timeout:?}; is the camera sending video?")]
    Timeout { url: String, timeout: Duration },
    #[error("{url} refused the credentials; check the user and password in the camera's URL")]
    Auth { url: String },
    #[error("{url} has no such stream; check the path in the camera's URL")]
    NotFound { url: String },
    /// The TLS handshake failed, most often over a self-signed certificate; `detail` says
    /// which and names `verify_tls`.
    #[error("no picture from {url}: {detail}")]
    Tls { url: String, detail: String },
    #[error("{url} cannot be previewed: {reason}")]
    BadUrl { url: String, reason: String },
    /// Every grab the cache allows at once is running (for other cameras).
    #[error(
        "as many pictures as may be grabbed at once ({limit}) are being grabbed from cameras; try again in a few seconds"
    )]
    Busy { limit: usize },
    /// The requester holds as many grabs as it may already ([`PreviewCache::get_claiming`]).
    #[error(
        "your address is grabbing {limit} picture from the cameras already, the most one client may at once; try \
         again when it is done"
    )]
    ClientBusy { limit: usize },
    #[error("no picture from {url}: {detail}")]
    Other { url: String, detail: String },
}

/// Grabs one picture from `url` (credentials allowed in it), without caching. Runs the
/// pipeline on a blocking thread.
pub async fn grab(url: &str, options: &PreviewOptions) -> Result<Preview, PreviewError> {
    let masked = mask_url_credentials(url);
    let started = Instant::now();
    let https = url::Url::parse(url).is_ok_and(|u| u.scheme() == "https");
    // The certificate is judged by the probes' verifier first, for two reasons: souphttpsrc
    // reports a refused certificate as a bare stream error, just like a refused connection;
    // and within one process a strict souphttpsrc accepts a server that a lenient one
    // accepted before (measured with GStreamer 1.22 and glib-networking 2.74, most likely
    // TLS session resumption), so a camera switched back to verifying would still show
    // pictures while its heartbeats say `tls`.
    if https
        && options.verify_tls
        && let Some(why) = crate::probe::mjpeg::certificate_refusal(url, options.timeout).await
    {
        return Err(PreviewError::Tls { url: masked, detail: why });
    }
    let Some(remaining) = options.timeout.checked_sub(started.elapsed()).filter(|t| !t.is_zero()) else {
        return Err(PreviewError::Timeout { url: masked, timeout: options.timeout });
    };
    let (owned, blocking_options) = (url.to_owned(), PreviewOptions { timeout: remaining, ..options.clone() });
    match tokio::task::spawn_blocking(move || grab_blocking(&owned, &blocking_options)).await {
        Ok(result) => result.map_err(|e| match e {
            PreviewError::Timeout { url, .. } => PreviewError::Timeout { url, timeout: options.timeout },
            e => e,
        }),
        Err(e) => Err(PreviewError::Other { url: masked, detail: format!("the grab thread failed: {e}") }),
    }
}

/// The camera's location without credentials, and the credentials.
struct Source {
    location: String,
    user: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("location", &self.location)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

fn split_credentials(raw: &str, masked: &str) -> Result<Source, PreviewError> {
    let bad = |reason: String| PreviewError::BadUrl { url: masked.to_owned(), reason };
    let mut url = url::Url::parse(raw).map_err(|e| bad(format!("not a URL ({e})")))?;
    if !SCHEMES.contains(&url.scheme()) {
        return Err(bad(format!("the scheme `{}` is not one of {}", url.scheme(), SCHEMES.join(", "))));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host".to_owned()));
    }
    let decode = |s: &str| crate::probe::percent_decode(s);
    let user = (!url.username().is_empty()).then(|| decode(url.username()));
    let password = url.password().map(decode);
    // Cannot fail for URLs with a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(Source { location: url.to_string(), user, password })
}

/// Sets the pipeline to Null however the grab ends.
struct NullOnDrop(gst::Pipeline);

impl Drop for NullOnDrop {
    fn drop(&mut self) {
        if self.0.set_state(gst::State::Null).is_err() {
            tracing::warn!("the preview pipeline did not stop cleanly");
        }
    }
}

fn grab_blocking(raw_url: &str, options: &PreviewOptions) -> Result<Preview, PreviewError> {
    let masked = mask_url_credentials(raw_url);
    let other = |detail: String| PreviewError::Other { url: masked.clone(), detail: mask_url_credentials(&detail) };
    let source = split_credentials(raw_url, &masked)?;
    gst::init().map_err(|e| other(format!("GStreamer cannot start: {e}")))?;
    let taken_at = jiff::Timestamp::now();
    let deadline = std::time::Instant::now() + options.timeout;

    let make = |name: &str| {
        gst::ElementFactory::make(name).build().map_err(|_| {
            other(format!("the GStreamer element `{name}` is missing (install gstreamer1.0-plugins-good/-bad/-libav)"))
        })
    };
    let pipeline = gst::Pipeline::new();
    let guard = NullOnDrop(pipeline.clone());
    let decode = make("uridecodebin")?;
    decode.set_property("uri", &source.location);
    let convert = make("videoconvert")?;
    let scale = make("videoscale")?;
    let filter = make("capsfilter")?;
    filter.set_property("caps", jpeg_input(None));
    let encode = make("jpegenc")?;
    encode.set_property("quality", JPEG_QUALITY);
    let sink = gst_app::AppSink::builder().max_buffers(1).drop(false).sync(false).build();
    pipeline
        .add_many([&decode, &convert, &scale, &filter, &encode, sink.upcast_ref()])
        .map_err(|e| other(format!("cannot build the pipeline: {e}")))?;
    gst::Element::link_many([&convert, &scale, &filter, &encode, sink.upcast_ref()])
        .map_err(|e| other(format!("cannot link the pipeline: {e}")))?;

    let (user, password) = (source.user.clone(), source.password.clone());
    let timeout_s = options.timeout.as_secs().max(1);
    let verify_tls = options.verify_tls;
    decode.connect("source-setup", false, move |args| {
        if let Some(src) = args.get(1).and_then(|v| v.get::<gst::Element>().ok()) {
            configure_source(&src, user.as_deref(), password.as_deref(), timeout_s, verify_tls);
        }
        None
    });
    // decodebin exposes a demuxer's pads only after its no-more-pads, which multipartdemux
    // emits for a live MJPEG stream only when told the stream has one content type.
    pipeline.connect_deep_element_added(|_, _, element| {
        if element.factory().is_some_and(|f| f.name() == "multipartdemux") {
            element.set_property("single-stream", true);
        }
    });
    let max_width = options.max_width;
    let convert_weak = convert.downgrade();
    let filter_weak = filter.downgrade();
    let pipeline_weak = pipeline.downgrade();
    decode.connect_pad_added(move |_, pad| {
        let (Some(convert), Some(filter)) = (convert_weak.upgrade(), filter_weak.upgrade()) else { return };
        let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
        let structure = caps.as_ref().and_then(|c| c.structure(0).map(|s| s.to_owned()));
        let is_video = structure.as_ref().is_some_and(|s| s.name().starts_with("video/"));
        let sinkpad = convert.static_pad("sink").expect("videoconvert has a sink pad");
        if !is_video || sinkpad.is_linked() {
            // Audio, or a second video stream: let it flow into nothing.
            if let Some(pipeline) = pipeline_weak.upgrade()
                && let Ok(fake) = gst::ElementFactory::make("fakesink").property("sync", false).build()
                && pipeline.add(&fake).is_ok()
            {
                let _ = fake.sync_state_with_parent();
                let _ = pad.link(&fake.static_pad("sink").expect("fakesink has a sink pad"));
            }
            return;
        }
        if let (Some(max), Some(s)) = (max_width, structure.as_ref())
            && let (Ok(w), Ok(h)) = (s.get::<i32>("width"), s.get::<i32>("height"))
            && let Some((sw, sh)) = scaled_size(w, h, max)
        {
            filter.set_property("caps", jpeg_input(Some((sw, sh))));
        }
        if let Err(e) = pad.link(&sinkpad) {
            tracing::warn!(error = ?e, "preview: cannot link the decoded video");
        }
    });

    pipeline.set_state(gst::State::Playing).map_err(|_| first_error(&pipeline, &masked, options.timeout))?;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let result = loop {
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_nseconds(POLL.as_nanos() as u64)) {
            break picture(&sample, taken_at).ok_or_else(|| other("the encoder gave no picture".to_owned()));
        }
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos]) {
            break Err(match msg.view() {
                gst::MessageView::Error(e) => classify(e, &masked, options.timeout),
                _ => other("the stream ended before a picture".to_owned()),
            });
        }
        if std::time::Instant::now() >= deadline {
            break Err(PreviewError::Timeout { url: masked.clone(), timeout: options.timeout });
        }
    };
    drop(guard);
    if let Err(e) = &result {
        tracing::debug!(url = %masked, error = %e, "preview failed");
    }
    result
}

/// Credentials, timeouts and certificate checking on the source `uridecodebin` made.
fn configure_source(src: &gst::Element, user: Option<&str>, password: Option<&str>, timeout_s: u64, verify_tls: bool) {
    let factory = src.factory().map(|f| f.name().to_string()).unwrap_or_default();
    let has = |name: &str| src.find_property(name).is_some();
    match factory.as_str() {
        "rtspsrc" => {
            src.set_property_from_str("protocols", "tcp");
            src.set_property("latency", 0u32);
            if has("tcp-timeout") {
                src.set_property("tcp-timeout", timeout_s * 1_000_000);
            }
        }
        "souphttpsrc" => {
            src.set_property("timeout", u32::try_from(timeout_s).unwrap_or(u32::MAX));
            src.set_property("ssl-strict", verify_tls);
        }
        _ => {}
    }
    if has("user-id") && has("user-pw") {
        if let Some(user) = user {
            src.set_property("user-id", user);
        }
        if let Some(password) = password {
            src.set_property("user-pw", password);
        }
    }
}

/// What the JPEG encoder is given: RGB, which libjpeg turns into JPEG's full-range YCbCr.
/// Given the decoder's YUV as it is, `jpegenc` would store its video range (16–235) as if it
/// were full range: black as dark grey, every colour washed out.
fn jpeg_input(size: Option<(i32, i32)>) -> gst::Caps {
    let caps = gst::Caps::builder("video/x-raw").field("format", "RGB");
    match size {
        Some((w, h)) => caps.field("width", w).field("height", h).build(),
        None => caps.build(),
    }
}

/// The size to scale `w`×`h` down to so it is at most `max` wide; `None` if it already is.
/// Even sizes, because most encoders and the I420 layout want them.
fn scaled_size(w: i32, h: i32, max: u32) -> Option<(i32, i32)> {
    let max = i32::try_from(max).ok()?.max(2);
    if w <= max || w <= 0 || h <= 0 {
        return None;
    }
    let even = |v: i64| ((v / 2) * 2).max(2) as i32;
    Some((even(max as i64), even((h as i64 * max as i64 + w as i64 / 2) / w as i64)))
}

fn picture(sample: &gst::Sample, taken_at: jiff::Timestamp) -> Option<Preview> {
    let s = sample.caps()?.structure(0)?;
    let (width, height) = (s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?);
    let map = sample.buffer()?.map_readable().ok()?;
    Some(Preview { jpeg: map.as_slice().to_vec(), width: width as u32, height: height as u32, taken_at })
}

/// The first error on the bus (after a failed state change), classified.
fn first_error(pipeline: &gst::Pipeline, masked: &str, timeout: Duration) -> PreviewError {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    match bus.timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error]) {
        Some(msg) => match msg.view() {
            gst::MessageView::Error(e) => classify(e, masked, timeout),
            _ => unreachable_other(masked),
        },
        None => unreachable_other(masked),
    }
}

fn unreachable_other(masked: &str) -> PreviewError {
    PreviewError::Other { url: masked.to_owned(), detail: "the pipeline would not start".to_owned() }
}

/// GStreamer's error as one of ours: resource errors say what went wrong in their kind.
fn classify(e: &gst::message::Error, masked: &str, timeout: Duration) -> PreviewError {
    let url = masked.to_owned();
    let err = e.error();
    let details = e.debug().map(|d| d.to_string()).unwrap_or_default();
    let element = e.src().map(|s| s.path_string().to_string()).unwrap_or_default();
    match err.kind::<gst::ResourceError>() {
        Some(gst::ResourceError::NotAuthorized) => return PreviewError::Auth { url },
        Some(gst::ResourceError::NotFound) => return PreviewError::NotFound { url },
        _ => {}
    }
    // souphttpsrc and rtspsrc name some statuses only in their text.
    let text = format!("{} {details}", err.message());
    if text.contains("401") || text.contains("Unauthorized") {
        return PreviewError::Auth { url };
    }
    if text.contains("404") || text.contains("Not Found") {
        return PreviewError::NotFound { url };
    }
    if text.contains("timed out") || text.contains("Timeout") {
        return PreviewError::Timeout { url, timeout };
    }
    tracing::debug!(element = %element, details = %mask_url_credentials(&details), "preview pipeline error");
    PreviewError::Other { url, detail: mask_url_credentials(&format!("{} ({element})", err.message())) }
}

/// What a grab ends with, and when it ended.
type Done = (Instant, Result<Arc<Preview>, PreviewError>);
/// A grab running in its own task, awaited by every request for its camera.
type Grab = Shared<BoxFuture<'static, Done>>;

#[derive(Debug)]
struct Slot {
    url: String,
    verify_tls: bool,
    grab: Grab,
}

impl Slot {
    /// Still running, or ended less than `cache_for` ago.
    fn fresh(&self, cache_for: Duration) -> bool {
        self.grab.peek().is_none_or(|(done, _)| done.elapsed() < cache_for)
    }
}

/// Previews per camera, each reused for `cache_for`, with at most one grab per camera and
/// `max_grabs` over all cameras at a time: requests that arrive during a grab wait for it and
/// share its result; a request that goes away does not stop it.
#[derive(Debug)]
pub struct PreviewCache {
    options: PreviewOptions,
    slots: Mutex<HashMap<String, Slot>>,
    grabs: Arc<Semaphore>,
}

impl PreviewCache {
    pub fn new(options: PreviewOptions) -> PreviewCache {
        let grabs = Arc::new(Semaphore::new(options.max_grabs));
        PreviewCache { options, slots: Mutex::new(HashMap::new()), grabs }
    }

    /// The camera's picture: a cached one younger than `cache_for`, the one being
    /// grabbed, or a new grab. Errors are cached the same way (a down camera is not asked
    /// again on every reload). An `https://` camera's certificate must be trusted unless
    /// `verify_tls` (the camera's resolved setting) is false; a picture grabbed under the
    /// other setting is not reused. [`PreviewError::Busy`] when a new grab is needed and
    /// `max_grabs` are running.
    pub async fn get(&self, camera_id: &str, url: &str, verify_tls: bool) -> Result<Arc<Preview>, PreviewError> {
        self.get_claiming(camera_id, url, verify_tls, || Ok(())).await
    }

    /// [`PreviewCache::get`] for a requester with a share of its own: `claim` is called only
    /// when a new grab must start, before one of the `max_grabs` is taken, and what it gives
    /// is held by the grab until the grab ends (so the requester's share stays taken while its
    /// grab runs, even after its request went away); its error is the answer. A request that
    /// joins a running grab or a cached picture claims nothing.
    pub async fn get_claiming<P: Send + 'static>(
        &self,
        camera_id: &str,
        url: &str,
        verify_tls: bool,
        claim: impl FnOnce() -> Result<P, PreviewError>,
    ) -> Result<Arc<Preview>, PreviewError> {
        let grab = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            // Drop slots whose time is over, so removed cameras do not stay in memory.
            slots.retain(|_, slot| slot.fresh(self.options.cache_for));
            match slots.get(camera_id).filter(|slot| slot.url == url && slot.verify_tls == verify_tls) {
                Some(slot) => slot.grab.clone(),
                None => {
                    let share = claim()?;
                    let permit = Arc::clone(&self.grabs)
                        .try_acquire_owned()
                        .map_err(|_| PreviewError::Busy { limit: self.options.max_grabs })?;
                    let grab = self.start(url, verify_tls, (permit, share));
                    slots.insert(camera_id.to_owned(), Slot { url: url.to_owned(), verify_tls, grab: grab.clone() });
                    grab
                }
            }
        };
        grab.await.1
    }

    /// Spawns a grab holding `places` (its place among `max_grabs`, and the requester's) until
    /// it ends.
    fn start<P: Send + 'static>(&self, url: &str, verify_tls: bool, places: (OwnedSemaphorePermit, P)) -> Grab {
        let options = PreviewOptions { verify_tls, ..self.options.clone() };
        let (url, masked) = (url.to_owned(), mask_url_credentials(url));
        let task = tokio::spawn(async move {
            let result = grab(&url, &options).await.map(Arc::new);
            drop(places);
            result
        });
        async move {
            let result = task.await.unwrap_or_else(|e| {
                Err(PreviewError::Other { url: masked, detail: format!("the grab task failed: {e}") })
            });
            (Instant::now(), result)
        }
        .boxed()
        .shared()
    }

    /// Forgets a camera's picture (its URL changed, or it was deleted).
    pub fn forget(&self, camera_id: &str) {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).remove(camera_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_location() {
        let s = split_credentials("rtsp://ad%40min:p%3Ass@10.0.0.5:554/s1?x=1", "masked").unwrap();
        assert_eq!(s.location, "rtsp://10.0.0.5:554/s1?x=1");
        assert_eq!((s.user.as_deref(), s.password.as_deref()), (Some("ad@min"), Some("p:ss")));
        let e = split_credentials("ftp://h/x", "ftp://h/x").unwrap_err().to_string();
        assert!(e.contains("the scheme `ftp` is not one of rtsp, rtsps, http, https"), "{e}");
    }

    #[test]
    fn wide_frames_are_scaled_to_even_sizes() {
        assert_eq!(scaled_size(1920, 1080, 640), Some((640, 360)));
        assert_eq!(scaled_size(1280, 721, 641), Some((640, 360)));
        assert_eq!(scaled_size(320, 240, 640), None);
    }
}
