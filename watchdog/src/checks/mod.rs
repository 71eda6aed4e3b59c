//! What the watchdog looks at, each check turning observations into [`Finding`]s.

pub mod cameras;
pub mod resources;
pub mod services;
pub mod stream;

pub use crate::conditions::Finding;
