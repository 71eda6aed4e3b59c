//! Integration tests of the configuration crate, in one binary.

mod cameras_rewrite;
mod common;
mod diagnostics;
mod seed_files;
