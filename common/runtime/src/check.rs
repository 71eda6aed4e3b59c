//! `--config FILE` and `check-config`, the same for every binary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ds_config::{ConfigFile, Diagnostic, Loaded, Problems, load_file};

/// The `--config` option; `None` means the installed default.
#[derive(Clone, Debug, clap::Args)]
pub struct ConfigArgs {
    /// Configuration file [default: /etc/desktop-streamer/<the service's file>]
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    /// The file to read: the one given, or `DIR/T::FILE_NAME`.
    pub fn path_for<T: ConfigFile>(&self) -> PathBuf {
        self.config.clone().unwrap_or_else(|| Path::new(ds_config::DEFAULT_CONFIG_DIR).join(T::FILE_NAME))
    }
}

/// Loads the configuration a service runs with. A missing default file means "all
/// defaults" (with a warning); a missing file that was named explicitly is an error.
pub fn load_or_default<T: ConfigFile>(args: &ConfigArgs) -> Result<Loaded<T>, Problems> {
    let path = args.path_for::<T>();
    if args.config.is_none() && !path.exists() {
        tracing::warn!(file = %path.display(), "no configuration file; running with defaults");
        return Ok(Loaded { config: T::default(), warnings: Vec::new() });
    }
    load_file::<T>(&path)
}

/// Prints the outcome of loading a file for `check-config`: every diagnostic, then a summary
/// line. `extra` checks what the file points to (another file, say) once it loaded.
pub fn check_config<T: ConfigFile>(path: &Path, extra: impl FnOnce(&T) -> Vec<Diagnostic>) -> ExitCode {
    let diagnostics = match load_file::<T>(path) {
        Ok(Loaded { config, mut warnings }) => {
            warnings.extend(extra(&config));
            warnings
        }
        Err(p) => p.diagnostics,
    };
    report(path, &diagnostics)
}

/// Prints diagnostics and a summary; exit 0 without errors, 1 with.
pub fn report(path: &Path, diagnostics: &[Diagnostic]) -> ExitCode {
    for d in diagnostics {
        eprintln!("{d}");
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    if errors == 0 {
        println!("{}: OK ({})", path.display(), plural(warnings, "warning"));
        ExitCode::SUCCESS
    } else {
        println!("{}: {}, {}", path.display(), plural(errors, "error"), plural(warnings, "warning"));
        ExitCode::FAILURE
    }
}
