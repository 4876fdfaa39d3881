//! The real binary's `serve` running in a [`Workspace`].
//!
//! [`Server::start`] spawns `phonebook-proxy --config phonebook.toml serve` and reads its stdout
//! until the `phonebook-proxy: serving on ldap://ADDR[ and ldaps://ADDR][ and http://ADDR]`
//! line, so the test
//! learns the ports the server picked (`listen = "127.0.0.1:0"`) and knows it accepts
//! connections — no sleeping. [`Server::stop`] sends SIGTERM and asserts a clean exit (0);
//! dropping a running server does the same without asserting, and kills it if it hangs.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::cli::{binary, Workspace};
use super::slapd::{signal, SIGTERM};

/// How long the server may take to listen, and to exit after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `serve`; its stderr (the log) goes to `serve.log` in the workspace.
pub struct Server {
    child: Option<Child>,
    ldap: SocketAddr,
    ldaps: Option<SocketAddr>,
    http: Option<SocketAddr>,
    log: PathBuf,
}

impl Server {
    /// Starts `serve` in `ws` and waits until it listens; panics (with its log) if it exits
    /// or stays silent instead.
    pub fn start(ws: &Workspace) -> Server {
        Server::start_with_env(ws, &[])
    }

    /// [`Server::start`] with extra environment variables (passwords for `password_env`, …).
    pub fn start_with_env(ws: &Workspace, env: &[(&str, &str)]) -> Server {
        let log = ws.path().join("serve.log");
        let stderr = File::create(&log).expect("create serve.log");
        let mut cmd = Command::new(binary());
        cmd.current_dir(ws.path())
            .arg("--config")
            .arg(ws.config_path())
            .arg("serve")
            .env_remove("PHONEBOOK_CONFIG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn phonebook-proxy serve");

        // A thread reads stdout to its end (so the pipe never fills) and hands over the lines.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            child: Some(child),
            ldap: SocketAddr::from(([0, 0, 0, 0], 0)),
            ldaps: None,
            http: None,
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with("phonebook-proxy: serving on ") => {
                    server.ldap = address_after(&line, "ldap://")
                        .unwrap_or_else(|| panic!("no ldap:// address in {line:?}"));
                    server.ldaps = address_after(&line, "ldaps://");
                    server.http = address_after(&line, "http://");
                    return server;
                }
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server.wait(STOP_TIMEOUT);
                    panic!(
                        "serve exited before listening ({status:?}):\n{}",
                        server.log()
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "serve did not report listening within {START_TIMEOUT:?}:\n{}",
                    server.log()
                ),
            }
        }
    }

    /// `ldap://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("ldap://{}", self.ldap)
    }

    /// `ldaps://127.0.0.1:PORT`; panics when no LDAPS listener is configured.
    pub fn ldaps_url(&self) -> String {
        format!(
            "ldaps://{}",
            self.ldaps.expect("serve has no ldaps listener")
        )
    }

    /// `http://127.0.0.1:PORT`; panics when the server reported no HTTP listener.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http.expect("serve has no http listener"))
    }

    pub fn addr(&self) -> SocketAddr {
        self.ldap
    }

    /// What the server logged so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The server's process id (for signals: SIGHUP reloads the configuration).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server already stopped").id()
    }

    /// The process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGTERM, then asserts that the server drains and exits 0 in time; returns its log.
    pub fn stop(mut self) -> String {
        let pid = self.child.as_ref().expect("server already stopped").id();
        signal(pid, SIGTERM).expect("SIGTERM to serve");
        let status = self.wait(STOP_TIMEOUT);
        let log = self.log();
        match status {
            Some(status) => assert_eq!(
                status.code(),
                Some(0),
                "serve must exit 0 after SIGTERM ({status}):\n{log}"
            ),
            None => panic!("serve did not exit within {STOP_TIMEOUT:?} of SIGTERM:\n{log}"),
        }
        log
    }

    /// Waits up to `timeout` for the process to exit; kills it after that (then `None`).
    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(2);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = signal(child.id(), SIGTERM);
            self.wait(STOP_TIMEOUT);
        }
    }
}

/// The socket address following `scheme` in `line` (`… ldap://127.0.0.1:3389 and …`).
fn address_after(line: &str, scheme: &str) -> Option<SocketAddr> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(scheme))
        .and_then(|addr| addr.trim_end_matches([',', '/']).parse().ok())
}
