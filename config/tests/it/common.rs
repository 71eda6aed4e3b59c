//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use ds_config::{ConfigFile, Diagnostic, Loaded, load_file, load_str};

pub fn fixture(dir: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(name)
}

/// Loads a file that must load; returns the config and the rendered warnings.
pub fn load_ok<T: ConfigFile>(path: &Path) -> (T, Vec<String>) {
    match load_file::<T>(path) {
        Ok(Loaded { config, warnings }) => (config, warnings.iter().map(ToString::to_string).collect()),
        Err(p) => panic!("{} should load:\n{p}", path.display()),
    }
}

/// Loads text that must fail; returns every diagnostic rendered.
pub fn load_err<T: ConfigFile>(name: &str, text: &str) -> Vec<String> {
    match load_str::<T>(Path::new(name), text) {
        Ok(_) => panic!("{name} should not load:\n{text}"),
        Err(p) => p.diagnostics.iter().map(Diagnostic::to_string).collect(),
    }
}

/// Loads text that must load; returns the warnings rendered.
pub fn warnings_of<T: ConfigFile>(name: &str, text: &str) -> Vec<String> {
    match load_str::<T>(Path::new(name), text) {
        Ok(l) => l.warnings.iter().map(ToString::to_string).collect(),
        Err(p) => panic!("{name} should load:\n{p}"),
    }
}
