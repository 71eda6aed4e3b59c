//! The CLIs as an operator meets them at a terminal: the real binaries on a real
//! pseudo-terminal ([`Terminal`]), keys typed in, and what the screen showed read back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use desktop_streamer_web::auth::Credentials;
use ds_tests::bins::bin;
use ds_tests::pty::Terminal;

const PASSWORD: &str = "correct horse battery staple";
const PROMPT_TIMEOUT: Duration = Duration::from_secs(20);
/// argon2 hashing in a debug build takes a moment.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

fn web_config(dir: &Path) -> PathBuf {
    let config = dir.join("web-config.json");
    let text = serde_json::json!({
        "bus": "session",
        "auth_file": dir.join("web-auth.json"),
        "cameras_file": dir.join("cameras.yaml"),
        "database": dir.join("cameras.db"),
        "log_dir": dir.join("logs"),
        "watchdog_state_dir": dir.join("watchdog"),
    });
    std::fs::write(&config, text.to_string()).unwrap();
    config
}

/// Runs `set-password` in a shell on a terminal, types `first` and `second` at its prompts,
/// then types one more line after it ended; returns the screen. The shell says how
/// set-password exited (`exit=N`) and repeats the last line, which the terminal must have
/// echoed (its echo is on again); no password may show anywhere.
fn type_passwords(dir: &Path, first: &str, second: &str) -> String {
    let script = r#""$0" --config "$1" set-password; echo "exit=$?"; read line; echo "got: $line""#;
    let mut command = Command::new("sh");
    command.args(["-c", script]).arg(bin("desktop-streamer-web")).arg(web_config(dir));
    let mut terminal = Terminal::spawn(&mut command).expect("set-password on a terminal");
    terminal.expect("New admin password: ", PROMPT_TIMEOUT).unwrap();
    terminal.type_in(&format!("{first}\n")).unwrap();
    terminal.expect("Repeat it: ", PROMPT_TIMEOUT).unwrap();
    terminal.type_in(&format!("{second}\n")).unwrap();
    terminal.expect("exit=", EXIT_TIMEOUT).unwrap();
    terminal.type_in("visible\n").unwrap();
    let (_, screen) = terminal.finish(EXIT_TIMEOUT).unwrap();
    assert!(screen.contains("visible\r\ngot: visible"), "the terminal's echo stayed off: {screen:?}");
    assert!(!screen.contains(first) && !screen.contains(second), "a password was echoed:\n{screen}");
    screen
}

#[test]
fn set_password_asks_twice_on_a_terminal_and_never_shows_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let screen = type_passwords(dir.path(), PASSWORD, PASSWORD);
    assert!(screen.contains("admin password set in") && screen.contains("exit=0"), "{screen}");
    let stored = Credentials::load(&dir.path().join("web-auth.json")).unwrap();
    assert!(stored.verify_password(PASSWORD), "the stored hash is not of the typed password");
}

#[test]
fn two_different_passwords_change_nothing_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let screen = type_passwords(dir.path(), PASSWORD, "correct horse battery stapel");
    assert!(screen.contains("exit=1"), "{screen}");
    assert!(screen.contains("the two passwords differ; nothing was changed"), "{screen}");
    assert!(!dir.path().join("web-auth.json").exists(), "a password was stored");
}

#[test]
fn status_is_in_colour_on_a_terminal_and_plain_with_no_color() {
    // Nothing answers on port 1 and the bus is a private one that does not exist: the screen
    // reports what it cannot reach, in red on a terminal.
    let run = |no_color: Option<&str>| {
        let mut command = Command::new(bin("desktop-streamer-monitor"));
        command.args(["--url", "http://127.0.0.1:1", "status"]).env_remove("NO_COLOR");
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let terminal = Terminal::spawn(&mut command).unwrap();
        terminal.finish(EXIT_TIMEOUT).unwrap()
    };
    let (_, screen) = run(None);
    assert!(screen.contains("\x1b[31mweb service unreachable at http://127.0.0.1:1"), "{screen:?}");
    assert!(screen.contains("\x1b[1mServices\x1b[0m"), "{screen:?}");

    let (_, plain) = run(Some("1"));
    assert!(plain.contains("web service unreachable at http://127.0.0.1:1"), "{plain:?}");
    assert!(!plain.contains('\x1b'), "NO_COLOR still painted: {plain:?}");
    // And an empty NO_COLOR means no preference, as no-color.org says.
    let (_, painted) = run(Some(""));
    assert!(painted.contains('\x1b'), "{painted:?}");
}
