//! Child processes of a test: started with their stdout and stderr captured line by line
//! (each into a shared buffer that the test reads while the child runs), waited on by
//! predicate with a deadline, and killed (SIGKILL to their own process id) when dropped, so
//! that a failing test leaves nothing running. Only the children started here are ever
//! signalled.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::wait::{WaitError, POLL};

/// How many of a child's last lines a failed wait, or a failing test, shows.
const TAIL: usize = 30;

#[derive(Debug, Default)]
struct Inner {
    lines: Mutex<Vec<String>>,
    /// The stream reached its end (the child closed it, normally by exiting).
    closed: AtomicBool,
}

/// The lines of one output stream of a child so far; clones share the buffer.
#[derive(Debug, Clone, Default)]
pub struct Lines(Arc<Inner>);

impl Lines {
    fn lock(&self) -> MutexGuard<'_, Vec<String>> {
        // A reader thread that panicked while pushing leaves whole lines behind: keep them.
        self.0.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, line: String) {
        self.lock().push(line);
    }

    /// Reads `from` to its end on a thread of its own, a line at a time.
    fn collect_from(&self, from: impl Read + Send + 'static, name: &str) {
        let lines = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("testkit-{name}"))
            .spawn(move || {
                let mut r = BufReader::new(from);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match r.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let text = String::from_utf8_lossy(&buf);
                            lines.push(text.trim_end_matches(['\n', '\r']).to_string());
                        }
                    }
                }
                lines.0.closed.store(true, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.0.closed.store(true, Ordering::SeqCst);
        }
    }

    /// Every line so far.
    pub fn snapshot(&self) -> Vec<String> {
        self.lock().clone()
    }

    /// Every line so far, each ended by a newline.
    pub fn text(&self) -> String {
        self.lock().iter().fold(String::new(), |mut s, l| {
            s.push_str(l);
            s.push('\n');
            s
        })
    }

    /// How many lines so far: a mark for [`Lines::wait_for_from`].
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Whether the stream has ended: no line will come any more.
    pub fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::SeqCst)
    }

    /// Whether a line so far satisfies `pred`.
    pub fn any(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.lock().iter().any(|l| pred(l))
    }

    /// The last line so far that satisfies `pred`.
    pub fn last_matching(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        self.lock().iter().rev().find(|l| pred(l)).cloned()
    }

    /// The last `n` lines, for a diagnosis.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lock();
        let from = lines.len().saturating_sub(n);
        lines.get(from..).unwrap_or_default().join("\n")
    }

    /// The first line that satisfies `pred`, waiting for it at most `timeout`. Fails at once
    /// when the stream has ended without one.
    pub fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, WaitError> {
        self.wait_for_from(0, timeout, what, pred)
    }

    /// The first line from line `mark` on (see [`Lines::len`]) that satisfies `pred`: a line
    /// written after something the test did, waiting for it at most `timeout`.
    pub fn wait_for_from(
        &self,
        mark: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, WaitError> {
        let deadline = Instant::now() + timeout;
        loop {
            // Read `closed` before the lines: a line pushed before the end is then seen.
            let closed = self.is_closed();
            if let Some(l) = self.lock().iter().skip(mark).find(|l| pred(l)) {
                return Ok(l.clone());
            }
            if closed || Instant::now() >= deadline {
                let why = if closed {
                    "the output ended without it".to_string()
                } else {
                    format!("not within {timeout:?}")
                };
                return Err(WaitError::new(format!(
                    "{what}: {why}; last lines:\n{}",
                    self.tail(TAIL)
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// [`Lines::wait_for`] for async tests: sleeps on the runtime's timer between polls.
    pub async fn wait_for_async(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, WaitError> {
        let deadline = Instant::now() + timeout;
        loop {
            let closed = self.is_closed();
            if let Some(l) = self.lock().iter().find(|l| pred(l)) {
                return Ok(l.clone());
            }
            if closed || Instant::now() >= deadline {
                let why = if closed {
                    "the output ended without it".to_string()
                } else {
                    format!("not within {timeout:?}")
                };
                return Err(WaitError::new(format!(
                    "{what}: {why}; last lines:\n{}",
                    self.tail(TAIL)
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// A child process of the test. Dropping it kills it (SIGKILL to its process id) and reaps
/// it; when the test is failing, its last lines are printed first.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    /// Whether the child has been reaped (its process id may then belong to another process:
    /// it is never signalled again).
    reaped: Option<ExitStatus>,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Proc {
    /// Starts `cmd` (stdin closed, stdout and stderr captured). `name` labels diagnostics.
    pub fn spawn(name: &str, mut cmd: Command) -> std::io::Result<Self> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("starting {name}: {e}")))?;
        let stdout = Lines::default();
        let stderr = Lines::default();
        match child.stdout.take() {
            Some(s) => stdout.collect_from(s, &format!("{name}-out")),
            None => stdout.0.closed.store(true, Ordering::SeqCst),
        }
        match child.stderr.take() {
            Some(s) => stderr.collect_from(s, &format!("{name}-err")),
            None => stderr.0.closed.store(true, Ordering::SeqCst),
        }
        Ok(Self {
            name: name.to_string(),
            child,
            reaped: None,
            stdout,
            stderr,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first stdout line that satisfies `pred`, waiting at most `timeout` (see
    /// [`Lines::wait_for`]); the error also shows the end of stderr.
    pub fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, WaitError> {
        self.stdout
            .wait_for(timeout, &format!("{}: {what}", self.name), pred)
            .map_err(|e| self.with_stderr(e))
    }

    /// [`Proc::wait_for`] for async tests.
    pub async fn wait_for_async(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, WaitError> {
        self.stdout
            .wait_for_async(timeout, &format!("{}: {what}", self.name), pred)
            .await
            .map_err(|e| self.with_stderr(e))
    }

    fn with_stderr(&self, e: WaitError) -> WaitError {
        WaitError::new(format!(
            "{}\n{} stderr:\n{}",
            e.message,
            self.name,
            self.stderr.tail(TAIL)
        ))
    }

    /// Its exit status if it has exited (reaping it).
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        if self.reaped.is_none() {
            self.reaped = self.child.try_wait()?;
        }
        Ok(self.reaped)
    }

    /// Kills it (SIGKILL) and reaps it; nothing when it has already been reaped.
    pub fn kill(&mut self) {
        if self.reaped.is_none() {
            let _ = self.child.kill();
            self.reaped = self.child.wait().ok();
        }
    }

    /// Sends it SIGINT (as Ctrl-C would), to test a clean stop.
    pub fn interrupt(&mut self) -> std::io::Result<()> {
        if self.try_wait()?.is_some() {
            return Err(std::io::Error::other(format!(
                "{} has already exited",
                self.name
            )));
        }
        // `kill(1)`: the crate forbids unsafe code, so no direct libc call.
        let st = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()?;
        if st.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("kill -INT: {st}")))
        }
    }

    /// Waits at most `timeout` for it to exit, and for both its streams to end (so that
    /// every line it wrote is in [`Proc::stdout`] and [`Proc::stderr`]).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, WaitError> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self
                .try_wait()
                .map_err(|e| WaitError::new(format!("{}: waiting: {e}", self.name)))?;
            if let Some(s) = status {
                if (self.stdout.is_closed() && self.stderr.is_closed())
                    || Instant::now() >= deadline
                {
                    return Ok(s);
                }
            } else if Instant::now() >= deadline {
                return Err(self.with_stderr(WaitError::new(format!(
                    "{}: still running after {timeout:?}",
                    self.name
                ))));
            }
            std::thread::sleep(POLL);
        }
    }

    /// [`Proc::wait_exit`] for async tests.
    pub async fn wait_exit_async(&mut self, timeout: Duration) -> Result<ExitStatus, WaitError> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self
                .try_wait()
                .map_err(|e| WaitError::new(format!("{}: waiting: {e}", self.name)))?;
            if let Some(s) = status {
                if (self.stdout.is_closed() && self.stderr.is_closed())
                    || Instant::now() >= deadline
                {
                    return Ok(s);
                }
            } else if Instant::now() >= deadline {
                return Err(self.with_stderr(WaitError::new(format!(
                    "{}: still running after {timeout:?}",
                    self.name
                ))));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- {} (pid {}) stdout, last lines:\n{}\n--- {} stderr, last lines:\n{}",
                self.name,
                self.pid(),
                self.stdout.tail(TAIL),
                self.name,
                self.stderr.tail(TAIL)
            );
        }
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn captures_both_streams_and_waits_for_a_line() {
        let mut p = Proc::spawn("sh", sh("echo one; echo two >&2; echo 'N=3'")).unwrap();
        let l = p
            .wait_for(Duration::from_secs(10), "N=", |l| l.starts_with("N="))
            .unwrap();
        assert_eq!(l, "N=3");
        assert!(p.wait_exit(Duration::from_secs(10)).unwrap().success());
        assert_eq!(p.stdout.snapshot(), ["one", "N=3"]);
        assert_eq!(p.stderr.snapshot(), ["two"]);
    }

    #[test]
    fn a_wait_fails_at_once_when_the_output_ends_without_the_line() {
        let p = Proc::spawn("sh", sh("echo nothing")).unwrap();
        let started = Instant::now();
        let e = p
            .wait_for(Duration::from_secs(30), "never", |l| l == "never")
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(20));
        assert!(e.message.contains("ended without it"), "{e}");
        assert!(e.message.contains("nothing"), "{e}");
    }

    #[test]
    fn waits_for_lines_after_a_mark() {
        let p = Proc::spawn("sh", sh("echo A; sleep 0.3; echo A; sleep 60")).unwrap();
        p.wait_for(Duration::from_secs(10), "A", |l| l == "A")
            .unwrap();
        let mark = p.stdout.len();
        p.stdout
            .wait_for_from(mark, Duration::from_secs(10), "second A", |l| l == "A")
            .unwrap();
        assert_eq!(p.stdout.len(), 2);
    }

    #[test]
    fn dropping_kills_the_child() {
        let p = Proc::spawn("sleep", sh("exec sleep 60")).unwrap();
        let pid = p.pid();
        drop(p);
        // Reaped by the drop: no process with that id is left (unless reused at once).
        let alive = std::path::Path::new(&format!("/proc/{pid}/status"))
            .exists()
            .then(|| std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default())
            .is_some_and(|c| c.contains("sleep"));
        assert!(!alive);
    }

    #[test]
    fn interrupt_stops_it() {
        let mut p = Proc::spawn("sleep", sh("exec sleep 60")).unwrap();
        p.interrupt().unwrap();
        let st = p.wait_exit(Duration::from_secs(10)).unwrap();
        assert!(!st.success());
    }
}
