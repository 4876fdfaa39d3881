//! A throwaway OpenLDAP `slapd` as the upstream directory for integration tests and benches.
//!
//! Needs the Debian packages `slapd` and `ldap-utils` (OpenLDAP 2.5). Nothing system-wide is
//! touched: config, database, certificates and log live in a fresh temporary directory, slapd
//! listens on 127.0.0.1 only (free ports picked at start), runs in the foreground as a child of
//! the test process and as the current user (root included), and is killed when the [`Slapd`]
//! value is dropped.
//!
//! ```ignore
//! let (ldif, stats) = gen::people_ldif(&gen::GenOptions { n: 1500, seed: 1, with_memberof: true });
//! let slapd = Slapd::builder().ldif(ldif).start()?;      // offline slapadd, then start
//! let url = slapd.url();                                  // ldap://127.0.0.1:PORT
//! ```
//!
//! Directory facts tests may rely on:
//! * suffix [`SUFFIX`]; rootdn [`ROOT_DN`] / [`ROOT_PW`] without limits;
//! * [`PROXY_DN`] / [`PROXY_PW`]: unpaged searches stop after 1000 entries with rc 4
//!   (sizeLimitExceeded), a page size above 1000 fails with rc 11 (adminLimitExceeded), paged
//!   searches are unlimited in total;
//! * anonymous: read access to everything but userPassword, size limit 500 (also for paged
//!   searches) unless changed with [`SlapdBuilder::anon_sizelimit`];
//! * syncprov overlay (off unless [`SlapdBuilder::syncprov`]): RFC 4533 content sync, with a
//!   session log, so a refresh from a cookie reports deletions as a set of entry UUIDs.
//! * memberof overlay (default on): `memberOf` is operational, so request it by name or `+`.
//!   An offline load ([`SlapdBuilder::ldif`]) bypasses overlays: the LDIF must carry memberOf
//!   itself (`GenOptions::with_memberof`). Online changes (`ldapadd`, …) are maintained by it.
//!
//! Do not keep a `Slapd` in a `static`: statics are never dropped, so slapd would outlive the
//! test process.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};

use super::certs;

pub const SUFFIX: &str = "dc=example,dc=com";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
pub const ROOT_PW: &str = "admin-secret";
pub const PROXY_DN: &str = "cn=phonebook-proxy,dc=example,dc=com";
pub const PROXY_PW: &str = "proxy-secret";
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=com";
pub const GROUPS_DN: &str = "ou=groups,dc=example,dc=com";
pub const PHONEBOOK_GROUP_DN: &str = "cn=company-phonebook,ou=groups,dc=example,dc=com";
pub const EDITORS_GROUP_DN: &str = "cn=phonebook-editors,ou=groups,dc=example,dc=com";
pub const CONTRACTORS_GROUP_DN: &str = "cn=external-contractors,ou=groups,dc=example,dc=com";
/// Unpaged size limit and maximum page size of [`PROXY_DN`].
pub const PROXY_SIZE_LIMIT: usize = 1000;
/// slapd's default size limit, used for anonymous searches unless configured otherwise.
pub const DEFAULT_ANON_SIZELIMIT: usize = 500;

const SCHEMA_DIR: &str = "/etc/ldap/schema";
const MODULE_DIR: &str = "/usr/lib/ldap";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a command-line tool may take before it is killed.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(120);
const PORT_ATTEMPTS: usize = 5;

/// Who an `ldapsearch` binds as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Anonymous,
    /// [`ROOT_DN`], no limits.
    Root,
    /// [`PROXY_DN`], the limited service account.
    Proxy,
    /// Any DN and password.
    Simple {
        dn: String,
        password: String,
    },
}

/// Result of one OpenLDAP command-line tool run.
#[derive(Debug, Clone)]
pub struct CliOutput {
    /// Exit code (the LDAP result code for ldapsearch, e.g. 4 = sizeLimitExceeded); `None` if
    /// the tool was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Number of entries in the LDIF output (lines starting with `dn:` or `dn::`).
    pub fn entry_count(&self) -> usize {
        self.stdout.lines().filter(|l| l.starts_with("dn:")).count()
    }
}

/// Options for [`Slapd`]; start with [`Slapd::builder`].
#[derive(Debug, Clone)]
pub struct SlapdBuilder {
    tls: bool,
    memberof: bool,
    anon_sizelimit: Option<usize>,
    schema: Option<String>,
    ldif: Vec<LdifSource>,
    log_level: String,
    start_timeout: Duration,
    /// Extra `index` lines (attributes, index kinds) after the default ones.
    extra_indexes: Vec<(String, String)>,
    /// Global `index_substr_*` directives: (if_minlen, if_maxlen, any_len, any_step).
    substr_lengths: Option<(u32, u32, u32, u32)>,
    /// Global `threads` directive (slapd's default is 16).
    threads: Option<u32>,
    /// Global `loglevel` directive (syslog; `-d` still decides what goes to the log file).
    loglevel: Option<String>,
    /// The syncprov overlay (RFC 4533 content synchronization), off by default.
    syncprov: bool,
}

#[derive(Debug, Clone)]
enum LdifSource {
    Text(String),
    File(PathBuf),
}

impl Default for SlapdBuilder {
    fn default() -> Self {
        SlapdBuilder {
            tls: false,
            memberof: true,
            anon_sizelimit: Some(DEFAULT_ANON_SIZELIMIT),
            schema: None,
            ldif: Vec::new(),
            log_level: "none".into(),
            start_timeout: START_TIMEOUT,
            extra_indexes: Vec::new(),
            substr_lengths: None,
            threads: None,
            loglevel: None,
            syncprov: false,
        }
    }
}

impl SlapdBuilder {
    /// Also listen on `ldaps://127.0.0.1:<tls_port>/` and allow StartTLS on the plain port, with
    /// a freshly generated test CA ([`Slapd::ca_pem_path`]) and a server certificate for
    /// `127.0.0.1` and `localhost`.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// The syncprov overlay (default off): the database answers RFC 4533 content-sync
    /// searches (refreshOnly and refreshAndPersist) with entryUUID-keyed states and cookies.
    pub fn syncprov(mut self, on: bool) -> Self {
        self.syncprov = on;
        self
    }

    /// The memberof overlay (default on). With it off, LDIF must not contain `memberOf`.
    pub fn memberof(mut self, on: bool) -> Self {
        self.memberof = on;
        self
    }

    /// Size limit for anonymous (and other non-root, non-proxy) searches; default 500.
    pub fn anon_sizelimit(mut self, limit: usize) -> Self {
        self.anon_sizelimit = Some(limit);
        self
    }

    /// No size limit for anonymous searches.
    pub fn anon_sizelimit_unlimited(mut self) -> Self {
        self.anon_sizelimit = None;
        self
    }

    /// Extra schema (slapd.conf `attributetype` / `objectclass` text) included after the
    /// standard core, cosine, nis and inetorgperson schemas.
    pub fn schema(mut self, text: impl Into<String>) -> Self {
        self.schema = Some(text.into());
        self
    }

    /// LDIF loaded offline with `slapadd` before slapd starts (may be given several times; the
    /// suffix entry and the proxy account exist already). Overlays do not run: write memberOf
    /// into the LDIF (`GenOptions::with_memberof`).
    pub fn ldif(mut self, ldif: impl Into<String>) -> Self {
        self.ldif.push(LdifSource::Text(ldif.into()));
        self
    }

    /// Like [`SlapdBuilder::ldif`], from a file.
    pub fn ldif_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ldif.push(LdifSource::File(path.into()));
        self
    }

    /// slapd's `-d` level: "none" (default: only startup errors) or e.g. "stats" to log every
    /// operation to [`Slapd::log_path`].
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_string();
        self
    }

    /// How long to wait for slapd to answer (default 30 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Adds `index <attrs> <kinds>` (e.g. `("o", "eq,sub")`) after the default indexes
    /// (objectClass, uid, cn/sn/givenName/displayName and telephoneNumber/mobile/mail eq,sub,
    /// member/employeeNumber/employeeType/entryUUID eq); naming an attribute the defaults
    /// already index makes slapd refuse the configuration.
    pub fn index(mut self, attrs: &str, kinds: &str) -> Self {
        self.extra_indexes
            .push((attrs.to_owned(), kinds.to_owned()));
        self
    }

    /// The lengths of substring index keys: `index_substr_if_minlen`, `index_substr_if_maxlen`,
    /// `index_substr_any_len`, `index_substr_any_step` (slapd's defaults: 2, 4, 4, 2).
    pub fn substr_index_lengths(
        mut self,
        if_minlen: u32,
        if_maxlen: u32,
        any_len: u32,
        any_step: u32,
    ) -> Self {
        self.substr_lengths = Some((if_minlen, if_maxlen, any_len, any_step));
        self
    }

    /// slapd's worker `threads` (default 16).
    pub fn threads(mut self, n: u32) -> Self {
        self.threads = Some(n);
        self
    }

    /// The `loglevel` directive, e.g. "0" for no syslog logging at all.
    pub fn loglevel(mut self, level: &str) -> Self {
        self.loglevel = Some(level.to_owned());
        self
    }

    /// slapd given its best chance at the phone query mix (what `benches/load.rs` compares
    /// against): eq,sub indexes on cn, sn, givenName, displayName, o, telephoneNumber and
    /// mobile; substring keys from 1 character (`index_substr_if_minlen 1`, `if_maxlen 4`,
    /// `any_len 3`, `any_step 1`), so 3-letter "contains" searches are answered from the
    /// index; `loglevel 0`; `threads 2` (one per core of the bench machine).
    pub fn tuned_for_search(self) -> Self {
        self.index("o", "eq,sub")
            .substr_index_lengths(1, 4, 3, 1)
            .loglevel("0")
            .threads(2)
    }

    /// Writes config and certificates, bulk-loads the LDIF, starts slapd and waits until it
    /// answers.
    pub fn start(self) -> Result<Slapd> {
        let dir = tempfile::Builder::new()
            .prefix("phonebook-slapd-")
            .tempdir()
            .context("creating the slapd temp dir")?;
        let root = dir.path().to_path_buf();
        fs::create_dir(root.join("data")).context("creating the slapd data dir")?;
        if self.tls {
            certs::write_test_certs(&root)?;
        }
        if let Some(schema) = &self.schema {
            fs::write(root.join("extra.schema"), schema).context("writing extra.schema")?;
        }
        let conf = root.join("slapd.conf");
        fs::write(&conf, slapd_conf(&root, &self)).context("writing slapd.conf")?;

        let base = root.join("base.ldif");
        fs::write(&base, base_ldif()).context("writing base.ldif")?;
        slapadd(&conf, &base)?;
        for (n, src) in self.ldif.iter().enumerate() {
            match src {
                LdifSource::Text(text) => {
                    let path = root.join(format!("initial-{n}.ldif"));
                    fs::write(&path, text).with_context(|| format!("writing {path:?}"))?;
                    slapadd(&conf, &path)?;
                    // the data is in the DB now; don't keep a second copy on disk
                    let _ = fs::remove_file(&path);
                }
                LdifSource::File(path) => slapadd(&conf, path)?,
            }
        }

        let mut slapd = Slapd {
            dir,
            port: 0,
            tls_port: None,
            child: None,
            paused: false,
            tls: self.tls,
            log_level: self.log_level,
            start_timeout: self.start_timeout,
        };
        let mut last_err = None;
        for _ in 0..PORT_ATTEMPTS {
            let (port, tls_port) = free_ports(self.tls)?;
            slapd.port = port;
            slapd.tls_port = tls_port;
            match slapd.launch() {
                Ok(()) => return Ok(slapd),
                Err(e) if is_addr_in_use(&e) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err
            .unwrap_or_else(|| anyhow!("no port attempt made"))
            .context(format!("slapd: ports in use {PORT_ATTEMPTS} times")))
    }
}

/// A running (or stopped) slapd in its own temporary directory.
#[derive(Debug)]
pub struct Slapd {
    dir: tempfile::TempDir,
    port: u16,
    tls_port: Option<u16>,
    child: Option<Child>,
    paused: bool,
    tls: bool,
    log_level: String,
    start_timeout: Duration,
}

impl Slapd {
    pub fn builder() -> SlapdBuilder {
        SlapdBuilder::default()
    }

    /// An empty directory (suffix + proxy account only), default options.
    pub fn start() -> Result<Slapd> {
        SlapdBuilder::default().start()
    }

    /// `ldap://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `ldaps://127.0.0.1:TLS_PORT`; panics if built without `tls(true)`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The ldaps port; panics if built without `tls(true)`.
    pub fn tls_port(&self) -> u16 {
        self.tls_port
            .expect("Slapd was built without tls(true): no ldaps port")
    }

    /// PEM file of the test CA that signed the server certificate; panics without `tls(true)`.
    pub fn ca_pem_path(&self) -> PathBuf {
        assert!(self.tls, "Slapd was built without tls(true): no CA");
        self.dir.path().join("ca.pem")
    }

    /// The temporary directory with slapd.conf, data/, certificates and slapd.log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("slapd.log")
    }

    /// The last `lines` lines of slapd's log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path(), lines)
    }

    /// Process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGTERM and wait for exit (SIGKILL after 15 s, reported as an error). No-op if stopped.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id();
        signal(pid, SIGTERM)?;
        if self.paused {
            // a stopped process only acts on SIGTERM once continued
            signal(pid, SIGCONT)?;
            self.paused = false;
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut delay = Duration::from_millis(5);
        loop {
            if child.try_wait().context("waiting for slapd")?.is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "slapd (pid {pid}) did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed\n{}",
                    self.log_tail(30)
                );
            }
            thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }

    /// Stops slapd if it runs and starts it again on the same port(s) with the same data.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        // The port was ours a moment ago; slapd uses SO_REUSEADDR, but another process might
        // have grabbed it. Retry briefly before giving up.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.launch() {
                Ok(()) => return Ok(()),
                Err(e) if is_addr_in_use(&e) && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e.context(format!("restarting slapd on port {}", self.port))),
            }
        }
    }

    /// SIGSTOP: the kernel still accepts TCP connections, but nothing is ever answered.
    pub fn pause(&mut self) -> Result<()> {
        let pid = self.pid().context("slapd is not running")?;
        signal(pid, SIGSTOP)?;
        self.paused = true;
        Ok(())
    }

    /// SIGCONT after [`Slapd::pause`].
    pub fn resume(&mut self) -> Result<()> {
        let pid = self.pid().context("slapd is not running")?;
        signal(pid, SIGCONT)?;
        self.paused = false;
        Ok(())
    }

    /// `ldapadd` as rootdn (online, so the memberof overlay maintains memberOf).
    pub fn ldapadd(&self, ldif: &str) -> Result<()> {
        self.modify_tool("ldapadd", ldif)
    }

    /// `ldapmodify` as rootdn; records need a `changetype:` line.
    pub fn ldapmodify(&self, ldif: &str) -> Result<()> {
        self.modify_tool("ldapmodify", ldif)
    }

    /// Deletes one entry as rootdn.
    pub fn delete(&self, dn: &str) -> Result<()> {
        self.delete_many(&[dn])
    }

    /// Deletes entries as rootdn with one `ldapdelete` run (leaf entries first, please).
    pub fn delete_many<S: AsRef<str>>(&self, dns: &[S]) -> Result<()> {
        if dns.is_empty() {
            return Ok(());
        }
        let mut list = String::new();
        for dn in dns {
            let dn = dn.as_ref();
            if dn.contains('\n') {
                bail!("DN with a newline: {dn:?}");
            }
            let _ = writeln!(list, "{dn}");
        }
        let file = self.scratch_file(&list)?;
        let path = file.path().to_string_lossy().into_owned();
        let out = self.run_bound("ldapdelete", &Bind::Root, &["-f", &path], CLI_TIMEOUT)?;
        ensure_success("ldapdelete", &out)
    }

    /// `ldapsearch -x -LLL -o ldif-wrap=no -H <url>` bound as `bind`, plus `args` (base, scope,
    /// filter, attributes, `-E pr=500/noprompt`, `-ZZ`, another `-H`, …). Gives the output
    /// whatever the exit code; errors only if the tool can't run or exceeds 120 s.
    pub fn ldapsearch(&self, bind: &Bind, args: &[&str]) -> Result<CliOutput> {
        self.ldapsearch_timeout(bind, args, CLI_TIMEOUT)
    }

    /// [`Slapd::ldapsearch`] with a wall-clock limit: the tool is killed after `timeout` and an
    /// error returned (ldapsearch alone waits forever on a paused server).
    pub fn ldapsearch_timeout(
        &self,
        bind: &Bind,
        args: &[&str],
        timeout: Duration,
    ) -> Result<CliOutput> {
        let ca = self.tls.then(|| self.ca_pem_path());
        ldapsearch(&self.url(), bind, args, ca.as_deref(), timeout)
    }

    /// Number of entries below [`SUFFIX`] matching `filter`, searched as rootdn (no limits).
    pub fn search_count(&self, filter: &str) -> Result<usize> {
        let out = self.ldapsearch(&Bind::Root, &["-b", SUFFIX, "-s", "sub", filter, "1.1"])?;
        match out.code {
            // 32 = noSuchObject: nothing there
            Some(0) => Ok(out.entry_count()),
            Some(32) => Ok(0),
            _ => bail!(
                "ldapsearch {filter:?} failed ({:?}): {}",
                out.code,
                out.stderr.trim()
            ),
        }
    }

    // -- internals ---------------------------------------------------------------------------

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("slapd.conf")
    }

    fn listen_urls(&self) -> String {
        match self.tls_port {
            Some(tls) => format!("ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{tls}/", self.port),
            None => format!("ldap://127.0.0.1:{}/", self.port),
        }
    }

    /// Spawns slapd on `self.port`/`self.tls_port` and waits until it answers.
    fn launch(&mut self) -> Result<()> {
        assert!(self.child.is_none(), "slapd is already running");
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {log_path:?}"))?;
        let log_start = fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
        let log2 = log.try_clone().context("cloning the log file handle")?;
        // -d keeps slapd in the foreground and logs to stderr; "-d none" still prints startup
        // errors such as "bind(…) failed errno=98", which "-d 0" would hide.
        let child = Command::new(tool("slapd"))
            .arg("-d")
            .arg(&self.log_level)
            .arg("-h")
            .arg(self.listen_urls())
            .arg("-f")
            .arg(self.conf_path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .context("spawning slapd (apt-get install slapd ldap-utils)")?;
        self.child = Some(child);
        self.paused = false;
        match self.wait_ready(log_start) {
            Ok(()) => Ok(()),
            Err(e) => {
                if let Some(mut child) = self.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                Err(e)
            }
        }
    }

    fn wait_ready(&mut self, log_start: u64) -> Result<()> {
        let started = Instant::now();
        let deadline = started + self.start_timeout;
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port);
        let mut delay = Duration::from_millis(10);
        loop {
            let child = self.child.as_mut().expect("launch sets the child");
            if let Some(status) = child.try_wait().context("waiting for slapd")? {
                let log = read_from(&self.log_path(), log_start);
                let tail = last_lines(&log, 30);
                if log.contains("errno=98") || log.contains("Address already in use") {
                    return Err(anyhow!(AddrInUse).context(format!(
                        "slapd could not bind port {} ({status}):\n{tail}",
                        self.port
                    )));
                }
                bail!(
                    "slapd exited during startup ({status}); log: {}\n{tail}",
                    self.log_path().display()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                let probe = run_cli(
                    "ldapsearch",
                    &[
                        "-x",
                        "-LLL",
                        "-H",
                        &self.url(),
                        "-o",
                        "nettimeout=2",
                        "-b",
                        "",
                        "-s",
                        "base",
                        "namingContexts",
                    ],
                    None,
                    Duration::from_secs(5),
                );
                if matches!(&probe, Ok(out) if out.success() && out.stdout.contains(SUFFIX)) {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "slapd did not answer on {} within {:?}; log tail:\n{}",
                    self.url(),
                    self.start_timeout,
                    last_lines(&read_from(&self.log_path(), log_start), 30)
                );
            }
            thread::sleep(delay);
            delay = (delay * 3 / 2).min(Duration::from_millis(250));
        }
    }

    fn modify_tool(&self, tool_name: &str, ldif: &str) -> Result<()> {
        let file = self.scratch_file(ldif)?;
        let path = file.path().to_string_lossy().into_owned();
        let out = self.run_bound(tool_name, &Bind::Root, &["-f", &path], CLI_TIMEOUT)?;
        ensure_success(tool_name, &out)
    }

    fn scratch_file(&self, content: &str) -> Result<tempfile::NamedTempFile> {
        let mut file = tempfile::Builder::new()
            .prefix("online-")
            .suffix(".ldif")
            .tempfile_in(self.dir.path())
            .context("creating a temp file")?;
        file.write_all(content.as_bytes())
            .context("writing a temp file")?;
        Ok(file)
    }

    /// Runs an ldap-utils tool with `-x -H <url>` and the bind options for `bind`.
    fn run_bound(
        &self,
        tool_name: &str,
        bind: &Bind,
        args: &[&str],
        timeout: Duration,
    ) -> Result<CliOutput> {
        let ca = self.tls.then(|| self.ca_pem_path());
        run_tool(tool_name, &self.url(), bind, args, ca.as_deref(), timeout)
    }
}

/// `ldapsearch -x -LLL -o ldif-wrap=no -H <url>` against any server (see [`run_tool`]).
pub fn ldapsearch(
    url: &str,
    bind: &Bind,
    args: &[&str],
    ca_pem: Option<&Path>,
    timeout: Duration,
) -> Result<CliOutput> {
    let mut all = vec!["-LLL", "-o", "ldif-wrap=no"];
    all.extend_from_slice(args);
    run_tool("ldapsearch", url, bind, &all, ca_pem, timeout)
}

/// Runs an ldap-utils tool (`ldapsearch`, `ldapadd`, `ldapwhoami`, …) against any server:
/// `-x -H <url>` (unless `args` has its own `-H`), the bind options for `bind`, then `args`,
/// with `LDAPTLS_CACERT` set to `ca_pem` when given. Gives the output whatever the exit code;
/// errors only if the tool can't run or exceeds `timeout`.
pub fn run_tool(
    tool_name: &str,
    url: &str,
    bind: &Bind,
    args: &[&str],
    ca_pem: Option<&Path>,
    timeout: Duration,
) -> Result<CliOutput> {
    let mut all: Vec<&str> = vec!["-x"];
    // an explicit -H in args replaces ours (the tools refuse a second -H)
    if !args.contains(&"-H") {
        all.extend_from_slice(&["-H", url]);
    }
    match bind {
        Bind::Anonymous => {}
        Bind::Root => all.extend_from_slice(&["-D", ROOT_DN, "-w", ROOT_PW]),
        Bind::Proxy => all.extend_from_slice(&["-D", PROXY_DN, "-w", PROXY_PW]),
        Bind::Simple { dn, password } => {
            all.extend_from_slice(&["-D", dn.as_str(), "-w", password.as_str()]);
        }
    }
    all.extend_from_slice(args);
    run_cli(tool_name, &all, ca_pem, timeout)
}

/// Runs a tool, capturing output, killing it after `timeout`.
fn run_cli(
    tool_name: &str,
    args: &[&str],
    ca_pem: Option<&Path>,
    timeout: Duration,
) -> Result<CliOutput> {
    let mut cmd = Command::new(tool(tool_name));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(ca) = ca_pem {
        cmd.env("LDAPTLS_CACERT", ca);
    }
    run_with_timeout(cmd, tool_name, timeout)
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL also ends a SIGSTOPped process; wait so no zombie/orphan is left
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// helpers

/// Marker error: slapd could not bind its port.
#[derive(Debug)]
struct AddrInUse;

impl std::fmt::Display for AddrInUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("address already in use")
    }
}

impl std::error::Error for AddrInUse {}

fn is_addr_in_use(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<AddrInUse>())
}

/// Full path of an OpenLDAP tool (the sbin ones are not on every user's PATH).
fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// Picks free ports by binding 127.0.0.1:0 (both held at once, so they differ).
fn free_ports(tls: bool) -> Result<(u16, Option<u16>)> {
    let a = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    let b = if tls {
        Some(TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?)
    } else {
        None
    };
    let pa = a.local_addr()?.port();
    let pb = match &b {
        Some(b) => Some(b.local_addr()?.port()),
        None => None,
    };
    Ok((pa, pb))
}

fn slapadd(conf: &Path, ldif: &Path) -> Result<()> {
    let mut cmd = Command::new(tool("slapadd"));
    // -q: quick mode (no consistency checks; fine for a fresh throwaway DB)
    cmd.arg("-q")
        .arg("-f")
        .arg(conf)
        .arg("-b")
        .arg(SUFFIX)
        .arg("-l")
        .arg(ldif)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_with_timeout(cmd, "slapadd", Duration::from_secs(600))?;
    if !out.success() {
        bail!(
            "slapadd of {} failed ({:?}):\n{}{}",
            ldif.display(),
            out.code,
            last_lines(&out.stdout, 20),
            last_lines(&out.stderr, 20)
        );
    }
    Ok(())
}

fn run_with_timeout(mut cmd: Command, what: &str, timeout: Duration) -> Result<CliOutput> {
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {what} (apt-get install slapd ldap-utils)"))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(2);
    let status: ExitStatus = loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for {what}"))?
        {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = out_reader.join();
            let err = err_reader.join().unwrap_or_default();
            bail!(
                "{what} timed out after {timeout:?}: {}",
                String::from_utf8_lossy(&err).trim()
            );
        }
        thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(CliOutput {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

fn ensure_success(what: &str, out: &CliOutput) -> Result<()> {
    if out.success() {
        Ok(())
    } else {
        bail!(
            "{what} failed (exit {:?}): {}{}",
            out.code,
            out.stderr.trim(),
            last_lines(&out.stdout, 5)
        )
    }
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let _ = io::Seek::seek(&mut f, io::SeekFrom::Start(offset));
        let _ = f.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(n)..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

fn log_tail(path: &Path, n: usize) -> String {
    last_lines(&read_from(path, 0), n)
}

// Signals without a libc dependency: std links libc anyway. Numbers are Linux's (x86, ARM,
// RISC-V); this harness only targets Linux CI.
pub const SIGTERM: i32 = 15;
const SIGCONT: i32 = 18;
const SIGSTOP: i32 = 19;

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Sends `sig` to process `pid` (one of our children).
pub fn signal(pid: u32, sig: i32) -> Result<()> {
    let pid = i32::try_from(pid).context("pid out of range")?;
    // SAFETY: kill(2) has no memory-safety preconditions; pid is our own child's.
    let rc = unsafe { kill(pid, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error()).with_context(|| format!("kill({pid}, {sig})"))
    }
}

// ---------------------------------------------------------------------------------------------
// config

fn base_ldif() -> String {
    format!(
        "dn: {SUFFIX}\n\
         objectClass: top\nobjectClass: dcObject\nobjectClass: organization\n\
         dc: example\no: Example GmbH\n\n\
         dn: {PROXY_DN}\n\
         objectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
         cn: phonebook-proxy\n\
         description: service account used by the phonebook proxy\n\
         userPassword: {PROXY_PW}\n\n"
    )
}

fn slapd_conf(dir: &Path, opts: &SlapdBuilder) -> String {
    let d = dir.display();
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# generated by tests/support/slapd.rs - throwaway test directory"
    );
    for schema in ["core", "cosine", "nis", "inetorgperson"] {
        let _ = writeln!(c, "include \"{SCHEMA_DIR}/{schema}.schema\"");
    }
    if opts.schema.is_some() {
        let _ = writeln!(c, "include \"{d}/extra.schema\"");
    }
    let _ = writeln!(c, "pidfile \"{d}/slapd.pid\"");
    let _ = writeln!(c, "argsfile \"{d}/slapd.args\"");
    let _ = writeln!(c, "modulepath \"{MODULE_DIR}\"");
    let _ = writeln!(c, "moduleload back_mdb");
    if opts.memberof {
        let _ = writeln!(c, "moduleload memberof");
    }
    if opts.syncprov {
        let _ = writeln!(c, "moduleload syncprov");
    }
    if opts.tls {
        // slapd is built with GnuTLS on Debian; these are the slapd.conf names it understands
        let _ = writeln!(c, "TLSCACertificateFile \"{d}/ca.pem\"");
        let _ = writeln!(c, "TLSCertificateFile \"{d}/server.pem\"");
        let _ = writeln!(c, "TLSCertificateKeyFile \"{d}/server-key.pem\"");
        let _ = writeln!(c, "TLSVerifyClient never");
    }
    match opts.anon_sizelimit {
        Some(n) => {
            let _ = writeln!(c, "sizelimit {n}");
        }
        None => {
            let _ = writeln!(c, "sizelimit unlimited");
        }
    }
    if let Some((if_minlen, if_maxlen, any_len, any_step)) = opts.substr_lengths {
        let _ = writeln!(c, "index_substr_if_minlen {if_minlen}");
        let _ = writeln!(c, "index_substr_if_maxlen {if_maxlen}");
        let _ = writeln!(c, "index_substr_any_len {any_len}");
        let _ = writeln!(c, "index_substr_any_step {any_step}");
    }
    if let Some(n) = opts.threads {
        let _ = writeln!(c, "threads {n}");
    }
    if let Some(level) = &opts.loglevel {
        let _ = writeln!(c, "loglevel {level}");
    }
    c.push_str(
        "timelimit 3600\n\
         # keep large multi-valued attributes sorted (70k-member groups)\n\
         sortvals member\n\n\
         database mdb\n\
         # the map is sparse; the default 10 MB is too small for 100k people\n\
         maxsize 8589934592\n",
    );
    let _ = writeln!(c, "suffix \"{SUFFIX}\"");
    let _ = writeln!(c, "rootdn \"{ROOT_DN}\"");
    let _ = writeln!(c, "rootpw {ROOT_PW}");
    let _ = writeln!(c, "directory \"{d}/data\"");
    c.push_str(
        "# throwaway DB: no fsync, writable mmap (much faster adds)\n\
         dbnosync\n\
         envflags writemap\n\
         checkpoint 1024 5\n\
         multival member 500,100\n\
         index objectClass eq\n\
         index uid eq\n\
         index cn,sn,givenName,displayName eq,sub\n\
         index telephoneNumber,mobile,mail eq,sub\n\
         index member,employeeNumber,employeeType eq\n\
         index entryUUID eq\n",
    );
    for (attrs, kinds) in &opts.extra_indexes {
        let _ = writeln!(c, "index {attrs} {kinds}");
    }
    if opts.memberof {
        c.push_str("index memberOf eq\n");
    }
    if opts.syncprov {
        c.push_str("index entryCSN eq\n");
    }
    let _ = writeln!(
        c,
        "limits dn.exact=\"{ROOT_DN}\" size=unlimited time=unlimited"
    );
    let _ = writeln!(
        c,
        "limits dn.exact=\"{PROXY_DN}\" size.soft={PROXY_SIZE_LIMIT} size.hard={PROXY_SIZE_LIMIT} \
         size.pr={PROXY_SIZE_LIMIT} size.prtotal=unlimited time=unlimited"
    );
    c.push_str(
        "access to attrs=userPassword\n\
         \tby self write\n\
         \tby anonymous auth\n\
         \tby * none\n\
         access to *\n\
         \tby * read\n",
    );
    if opts.memberof {
        c.push_str(
            "overlay memberof\n\
             memberof-group-oc groupOfNames\n\
             memberof-member-ad member\n\
             memberof-memberof-ad memberOf\n\
             memberof-dangling ignore\n\
             memberof-refint TRUE\n",
        );
    }
    if opts.syncprov {
        // After memberof, so the changes it makes are sent too.
        c.push_str("overlay syncprov\nsyncprov-checkpoint 100 10\nsyncprov-sessionlog 1000\n");
    }
    c
}
