//! Running the real `phonebook-proxy` binary in a scratch working directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A temporary working directory holding `phonebook.toml` (and the store, under `data/`).
pub struct Workspace {
    dir: tempfile::TempDir,
}

/// What one run of the binary printed, and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON objects printed one per line (`sync --json`).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// The single JSON object of a one-connector `sync --json`.
    pub fn report(&self) -> Value {
        let mut lines = self.json_lines();
        assert_eq!(lines.len(), 1, "one report expected: {self:?}");
        lines.remove(0)
    }

    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_phonebook-proxy")
}

impl Workspace {
    /// A workspace whose configuration is `config` (TOML text).
    pub fn new(config: &str) -> Self {
        let ws = Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        ws.write_config(config);
        ws
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("phonebook.toml")
    }

    /// Replaces the configuration (same store).
    pub fn write_config(&self, config: &str) {
        std::fs::write(self.config_path(), config).expect("write config");
    }

    /// Runs the binary with `args` in the workspace, with `--config phonebook.toml`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[])
    }

    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(binary());
        cmd.current_dir(self.path())
            .arg("--config")
            .arg(self.config_path())
            .args(args);
        cmd.env_remove("PHONEBOOK_CONFIG").env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run phonebook-proxy");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `sync --json` plus `extra`, asserting the exit code; returns the one report.
    pub fn sync(&self, extra: &[&str], expect_code: i32) -> Value {
        let mut args = vec!["sync", "--json"];
        args.extend_from_slice(extra);
        let run = self.run(&args);
        assert_eq!(run.code, expect_code, "sync {extra:?}: {run:?}");
        run.report()
    }

    /// The stored phone book as `export --format json`.
    pub fn export(&self) -> Value {
        let run = self.run(&["export", "--format", "json"]);
        assert_eq!(run.code, 0, "export: {run:?}");
        serde_json::from_str(&run.stdout).expect("export is JSON")
    }

    /// The entries of the export.
    pub fn entries(&self) -> Vec<Value> {
        self.export()["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// `[store]` + one `[[connector]]` reading `url` as the proxy service account; `extra` is
/// appended inside the connector table (more keys, then `[[connector.prefilter]]` …).
pub fn ldap_config(name: &str, url: &str, extra: &str) -> String {
    format!(
        r#"[store]
path = "data/phonebook.db"

[[connector]]
name = "{name}"
uri = "{url}"
base_dn = "ou=people,dc=example,dc=com"
bind_dn = "cn=phonebook-proxy,dc=example,dc=com"
password = "proxy-secret"
filter = "(objectClass=inetOrgPerson)"
{extra}
"#
    )
}
