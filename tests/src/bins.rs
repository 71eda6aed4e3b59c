//! The project's binaries, as built by `cargo build --workspace --bins` (the test command
//! builds them before running tests).

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_owned()
}

/// Path of one of the project's binaries, next to the running test's own target directory.
///
/// # Panics
/// If the binary was not built; the message says how to build it.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("test runs from target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (tests/run.sh does)",
        path.display()
    );
    path
}

/// Runs `desktop-streamer-monitor` with `args` (no token or NO_COLOR from the test's own
/// environment); its exit code, stdout and stderr.
pub fn run_monitor(args: &[&str]) -> (i32, String, String) {
    run_monitor_with(args, &[])
}

/// [`run_monitor`] with extra environment variables, such as `DBUS_SESSION_BUS_ADDRESS`.
pub fn run_monitor_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let std::process::Output { status, stdout, stderr } = std::process::Command::new(bin("desktop-streamer-monitor"))
        .args(args)
        .env_remove("DESKTOP_STREAMER_TOKEN")
        .env_remove("NO_COLOR")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .envs(env.iter().copied())
        .output()
        .expect("run desktop-streamer-monitor");
    let code = status.code().expect("exited, not killed");
    (code, String::from_utf8(stdout).expect("UTF-8 stdout"), String::from_utf8(stderr).expect("UTF-8 stderr"))
}
