//! The configuration files of desktop-streamer, shared by every binary.
//!
//! Files written for the systems this one replaces load unchanged: JSON may carry `//`
//! comments, a missing key takes its documented default (`{}` means all defaults), keys this
//! system does not use draw one warning each, and every problem of a file is reported at
//! once with file, line, column, key path, value and what is allowed.
//!
//! ```
//! use ds_config::{StreamerConfig, load_str};
//! let loaded = load_str::<StreamerConfig>("config.json".as_ref(), "{ \"fps\": 30 // smooth\n}").unwrap();
//! assert_eq!(loaded.config.fps, 30);
//! assert_eq!(loaded.config.width, 1280);
//! ```

mod atomic;
pub mod cameras;
pub mod diag;
pub mod document;
pub mod jsonc;
mod load;
pub mod redact;
mod secret;
pub mod streamer;
mod text;
mod validate;
pub mod watchdog;
pub mod web;
pub mod yaml;
mod yaml_patch;

pub use atomic::{write_atomic, write_atomic_with};
pub use cameras::{Camera, CamerasConfig, CamerasDocument};
pub use diag::{Diagnostic, Location, Problems, Severity};
pub use load::{ConfigFile, Format, Loaded, load_document, load_file, load_str};
pub use secret::Secret;
pub use streamer::StreamerConfig;
pub use validate::Validator;
pub use watchdog::WatchdogConfig;
pub use web::WebConfig;

/// Where the installed configuration files live.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/desktop-streamer";
