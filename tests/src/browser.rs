//! Headless Chromium (Debian's `chromium`) driven by playwright-core through `tests/browser/driver.mjs`,
//! for the sign-in page tests: the test says what to open, type, click, read and photograph.
//!
//! Every call waits at most the driver's own timeout (15 s) plus [`WAIT`]; a failed step panics with
//! the driver's words. Screenshots go to `target/screenshots/` (the committed copies under `docs/img/`
//! are refreshed by hand from there).

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::{WAIT, skip};

/// Where Debian puts Chromium (`AUTH_TEST_CHROMIUM` overrides).
fn chromium() -> PathBuf {
    std::env::var_os("AUTH_TEST_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// `target/screenshots/`, next to the test executable's profile directory.
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .expect("target/<profile>/deps/…");
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("creating target/screenshots");
    dir
}

/// A running browser with one page.
pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
    _profile: TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts Chromium with a fresh profile, or skips (see [`skip`]) and answers `None` when Chromium,
    /// Node.js or the installed npm package is missing.
    #[track_caller]
    pub fn start() -> Option<Browser> {
        let chromium = chromium();
        if !chromium.is_file() {
            skip(&format!("{} is missing (`apt-get install -y chromium`)", chromium.display()));
            return None;
        }
        let node = Command::new("node").arg("--version").stdin(Stdio::null()).output();
        if !node.is_ok_and(|out| out.status.success()) {
            skip("`node` is not on PATH; the sign-in page tests need Node.js 18 or later");
            return None;
        }
        let dir = browser_dir();
        if !dir.join("node_modules/playwright-core/package.json").is_file() {
            skip("tests/browser/node_modules is missing; run `npm ci --prefix tests/browser`");
            return None;
        }
        let profile = tempfile::Builder::new().prefix("auth-chromium-").tempdir().expect("tempdir");
        let mut child = Command::new("node")
            .arg(dir.join("driver.mjs"))
            .arg("--chromium")
            .arg(&chromium)
            .arg("--profile")
            .arg(profile.path())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning node tests/browser/driver.mjs");
        let stdin = child.stdin.take().expect("driver stdin");
        let out = child.stdout.take().expect("driver stdout");
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut browser = Browser { child, stdin, answers, _profile: profile };
        let ready = browser.read();
        assert_eq!(ready["ready"], true, "the driver did not start: {ready}");
        Some(browser)
    }

    fn read(&mut self) -> Value {
        let deadline = WAIT + std::time::Duration::from_secs(15);
        match self.answers.recv_timeout(deadline) {
            Ok(line) => {
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("driver said {line:?}: {e}"))
            }
            Err(_) => {
                let _ = self.child.kill();
                panic!("the browser driver did not answer within {deadline:?}");
            }
        }
    }

    /// Sends one command and returns its answer; panics when the step failed.
    #[track_caller]
    pub fn call(&mut self, command: Value) -> Value {
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).expect("writing to the driver");
        self.stdin.flush().expect("flushing the driver's stdin");
        let answer = self.read();
        assert_eq!(answer["ok"], true, "browser step {command} failed: {}", answer["error"]);
        answer
    }

    /// Opens `url` and waits for it to load; answers the HTTP status.
    #[track_caller]
    pub fn goto(&mut self, url: &str) -> u64 {
        self.call(json!({"op": "goto", "url": url}))["status"].as_u64().unwrap_or(0)
    }

    /// Types `value` into the field `selector`.
    #[track_caller]
    pub fn fill(&mut self, selector: &str, value: &str) {
        self.call(json!({"op": "fill", "selector": selector, "value": value}));
    }

    /// Clicks `selector`.
    #[track_caller]
    pub fn click(&mut self, selector: &str) {
        self.call(json!({"op": "click", "selector": selector}));
    }

    /// Waits until `selector` is visible.
    #[track_caller]
    pub fn visible(&mut self, selector: &str) {
        self.call(json!({"op": "visible", "selector": selector}));
    }

    /// Waits (up to `secs`) until the button `selector` is visible and enabled.
    #[track_caller]
    pub fn enabled(&mut self, selector: &str, secs: u64) {
        self.call(json!({"op": "enabled", "selector": selector, "timeout_ms": secs * 1000}));
    }

    /// The text of `selector`, once visible.
    #[track_caller]
    pub fn text(&mut self, selector: &str) -> String {
        self.call(json!({"op": "text", "selector": selector}))["text"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// An attribute of `selector` (`None` when absent).
    #[track_caller]
    pub fn attribute(&mut self, selector: &str, name: &str) -> Option<String> {
        self.call(json!({"op": "attribute", "selector": selector, "name": name}))["value"]
            .as_str()
            .map(str::to_owned)
    }

    /// Clicks `selector` and answers the URL of the first request that leaves for `prefix`, which is
    /// stopped there (the test plays that site itself).
    #[track_caller]
    pub fn click_capture(&mut self, selector: &str, prefix: &str) -> String {
        let answer =
            self.call(json!({"op": "click_capture", "selector": selector, "prefix": prefix}));
        answer["url"].as_str().unwrap_or("").to_owned()
    }

    /// The page's URL now.
    #[track_caller]
    pub fn url(&mut self) -> String {
        self.call(json!({"op": "url"}))["url"].as_str().unwrap_or("").to_owned()
    }

    /// Waits until the URL contains `part`.
    #[track_caller]
    pub fn wait_url(&mut self, part: &str) -> String {
        self.call(json!({"op": "wait_url", "contains": part}))["url"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// The browser's cookies, as Playwright lists them.
    #[track_caller]
    pub fn cookies(&mut self) -> Vec<Value> {
        self.call(json!({"op": "cookies"}))["cookies"].as_array().cloned().unwrap_or_default()
    }

    /// Errors the page logged or threw since the last call (a CSP violation is one).
    #[track_caller]
    pub fn console_errors(&mut self) -> Vec<String> {
        let answer = self.call(json!({"op": "console_errors"}));
        answer["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// Saves a full-page screenshot as `target/screenshots/<name>.png`; answers its path.
    #[track_caller]
    pub fn screenshot(&mut self, name: &str) -> PathBuf {
        let path = screenshot_dir().join(format!("{name}.png"));
        self.call(json!({"op": "screenshot", "path": path}));
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.stdin.write_all(b"{\"op\":\"quit\"}\n");
        let _ = self.stdin.flush();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
