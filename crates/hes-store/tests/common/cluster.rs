//! PostgreSQL servers of a test's own (initdb, pg_basebackup, pg_ctl) on loopback, under
//! /tmp, run as the postgres user when the test runs as root (as `scripts/services` does).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The newest installed PostgreSQL's binaries (`scripts/services up` installs them).
pub fn pg_bin() -> PathBuf {
    pg_bin_dir()
        .expect("no PostgreSQL server binaries under /usr/lib/postgresql: run scripts/services up")
}

fn pg_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, b)| b)
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A free loopback port (the listener is closed before the server binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One PostgreSQL server of the test, stopped (immediately) when dropped.
pub struct Server {
    pub bin: PathBuf,
    pub data: PathBuf,
    pub port: u16,
}

impl Server {
    /// Runs a PostgreSQL binary as the postgres user when we are root (the server refuses
    /// root), as `scripts/services` does.
    pub fn run(bin: &Path, tool: &str, args: &[&str]) -> Output {
        let exe = bin.join(tool);
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = c.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn ctl(&self, args: &[&str]) {
        let data = self.data.to_str().unwrap();
        let mut a = vec!["-D", data];
        a.extend_from_slice(args);
        Self::run(&self.bin, "pg_ctl", &a);
    }

    pub fn start(&self) {
        let log = self.data.with_extension("log");
        self.ctl(&["-l", log.to_str().unwrap(), "-w", "-t", "60", "start"]);
    }

    pub fn stop_immediately(&self) {
        self.ctl(&["-m", "immediate", "-w", "-t", "30", "stop"]);
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let _ = std::panic::catch_unwind(|| self.stop_immediately());
        }
    }
}

pub fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A new directory under /tmp that the postgres user owns (it cannot enter root's home,
/// where the target directory is).
pub fn root_dir(prefix: &str) -> PathBuf {
    let root = std::env::temp_dir().join(super::unique(prefix));
    std::fs::create_dir_all(&root).unwrap();
    if is_root() {
        let out = Command::new("chown")
            .args(["postgres:", root.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    root
}

impl Server {
    /// A new cluster in `root/name` (initdb), configured for loopback and `extra`, started.
    pub fn init(bin: &Path, root: &Path, name: &str, extra: &str) -> Self {
        let s = Server {
            bin: bin.to_path_buf(),
            data: root.join(name),
            port: free_port(),
        };
        Self::run(
            bin,
            "initdb",
            &[
                "-D",
                s.data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--no-locale",
            ],
        );
        append(
            &s.data.join("postgresql.conf"),
            &format!(
                "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
                 fsync = off\nshared_buffers = 16MB\nmax_connections = 40\n{extra}",
                s.port,
                root.display()
            ),
        );
        s.start();
        s
    }
}
