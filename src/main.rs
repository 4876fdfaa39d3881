//! The `phonebook-proxy` command line: parses arguments, runs one command of the library, and
//! turns its outcome into output and an exit code (0 success, 1 run-time failure, 2 bad usage
//! or configuration). The only place that prints for humans.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use phonebook_proxy::config::{Config, DEFAULT_PATH};
use phonebook_proxy::export;
use phonebook_proxy::report::ReportJson;
use phonebook_proxy::serve::{self, ServeError};
use phonebook_proxy::store::Store;
use phonebook_proxy::sync::connector::ConnectorConfig;
use phonebook_proxy::sync::{self, SyncOptions, SyncReport};

#[derive(Parser)]
#[command(
    name = "phonebook-proxy",
    version,
    about = "Keeps a company phone book in sync with upstream LDAP directories and serves it"
)]
struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "PHONEBOOK_CONFIG", default_value = DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the phone book to phones over LDAP and run the scheduled syncs, until SIGINT/SIGTERM.
    Serve,
    /// One-off import of every (or the named) connector.
    Sync {
        /// Only this connector (repeat for several).
        #[arg(long = "connector", value_name = "NAME")]
        connectors: Vec<String>,
        /// Change nothing; list what would be created, updated and removed.
        #[arg(long)]
        dry_run: bool,
        /// Apply even what the deletion guard holds back.
        #[arg(long)]
        force: bool,
        /// One JSON object per connector on stdout.
        #[arg(long)]
        json: bool,
        /// With --dry-run: also show the first mapped records with every field, and each
        /// dropped entry with the rule or reason that dropped it.
        #[arg(long, value_enum, requires = "dry_run")]
        show: Option<Show>,
    },
    /// Validate the configuration: every problem with its key path.
    CheckConfig {
        /// Also contact every connector's upstream: connect, bind, search the base DN with
        /// the filter, and count what the pre-filter keeps (nothing is written).
        #[arg(long)]
        connect: bool,
    },
    /// Write the stored phone book to stdout.
    Export {
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Start CSV with a UTF-8 byte order mark, so Excel reads umlauts right.
        #[arg(long)]
        bom: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Show {
    /// The mapped records and the dropped entries with their reasons.
    Mapped,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Ldif,
    Csv,
}

/// A failure with the exit code it maps to.
struct Failure {
    code: u8,
    message: String,
}

fn runtime(message: impl ToString) -> Failure {
    Failure {
        code: 1,
        message: message.to_string(),
    }
}

fn usage(message: impl ToString) -> Failure {
    Failure {
        code: 2,
        message: message.to_string(),
    }
}

/// ldap3_proto logs a message it cannot parse whole, as a list of decimal bytes, at ERROR: one
/// 128 KiB PDU became 600 KB of log, so any client could fill the disk. The codec reports
/// every such connection itself (one line, no payload), so ldap3_proto's own lines are off
/// whatever `RUST_LOG` says.
fn quiet_parser(filter: tracing_subscriber::EnvFilter) -> tracing_subscriber::EnvFilter {
    match "ldap3_proto=off".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server reports what it does; a one-off command only what went wrong.
    let default_level = if matches!(cli.command, Command::Serve) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(quiet_parser(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_level.into()),
        ))
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("{}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let config = Config::load(&cli.config).map_err(usage)?;
    match cli.command {
        Command::Serve => serve(cli.config.clone(), config),
        Command::CheckConfig { connect } => {
            let names: Vec<_> = config.connectors.iter().map(|c| c.name.as_str()).collect();
            println!(
                "{}: ok ({} connector(s): {})",
                cli.config.display(),
                names.len(),
                names.join(", ")
            );
            if !connect {
                return Ok(ExitCode::SUCCESS);
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| runtime(format!("cannot start the runtime ({e})")))?;
            let mut ok = true;
            for c in &config.connectors {
                match rt.block_on(sync::probe(c, &config.numbers)) {
                    Ok(p) => {
                        let kept = p.fetched - p.filtered_out - p.invalid;
                        let warn = if kept == 0 {
                            ok = false;
                            " — a sync would keep no entry and fail"
                        } else {
                            ""
                        };
                        println!(
                            "connector \"{}\": ok — {} answered {} entries for base {} and filter {}; the pre-filter keeps {}, {} invalid, {kept} become entries{warn}",
                            c.name,
                            c.source,
                            p.fetched,
                            if c.base_dn.is_empty() { "(file)" } else { c.base_dn.as_str() },
                            c.filter,
                            p.fetched - p.filtered_out,
                            p.invalid,
                        );
                    }
                    Err(e) => {
                        ok = false;
                        println!("connector \"{}\": {e}", c.name);
                    }
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Export { format, bom } => {
            let store = Store::open_with_timeout(&config.store.path, config.store.write_timeout)
                .map_err(runtime)?;
            let mut entries = store.all_entries().map_err(runtime)?;
            // Exactly what the endpoints serve: a connector removed from the file keeps its
            // data in the store (for when it comes back) but is no longer part of the book.
            entries.retain(|e| config.connector(&e.connector).is_some());
            for e in &mut entries {
                config.numbers.renumber(e);
            }
            phonebook_proxy::directory::display_order(&mut entries, config.order);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let written = match format {
                Format::Json => export::json(
                    &mut out,
                    store.generation().map_err(runtime)?,
                    &entries,
                    &config.numbers,
                ),
                Format::Ldif => export::ldif(
                    &mut out,
                    &config.ldap.base_dn,
                    &entries,
                    &config.numbers,
                    config.ldap.number_format,
                ),
                Format::Csv => export::csv(&mut out, &entries, bom),
            };
            match written.and_then(|()| out.flush()) {
                // `export | head` is a normal way to look at the start of a phone book.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other.map_err(|e| runtime(format!("cannot write the export ({e})")))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sync {
            connectors,
            dry_run,
            force,
            json,
            show,
        } => {
            let selected = select(&config, &connectors)?;
            let store = Store::open_with_timeout(&config.store.path, config.store.write_timeout)
                .map_err(runtime)?;
            // One thread: slapd-sized upstreams answer about as fast as one core maps entries,
            // and a second worker only contends with the upstream for the CPU (measured:
            // 1.3 s vs 1.9 s for a 100k pull on two cores).
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| runtime(format!("cannot start the runtime ({e})")))?;
            let options = SyncOptions { dry_run, force };
            let mut ok = true;
            for connector in selected {
                ok &= rt.block_on(sync_one(&config, connector, &store, options, json, show));
            }
            rt.shutdown_timeout(STORE_CLOSE_BOUND);
            if !store.close(STORE_CLOSE_BOUND) {
                eprintln!("the store did not close in time (a disk operation is stuck)");
                ok = false;
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// From SIGTERM to exit `serve` takes at most this long (plus a second for the runtime):
/// open requests and the store's last operation get that long to finish, then the process
/// exits anyway (code 1) — a disk that never answers must not keep a service from stopping.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// How long a one-off command waits for the store to release the database at its end.
const STORE_CLOSE_BOUND: Duration = Duration::from_secs(5);

fn serve(path: PathBuf, config: Config) -> Result<ExitCode, Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| runtime(format!("cannot start the runtime ({e})")))?;
    let outcome = rt.block_on(async {
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let mut stopping = shutdown.clone();
        let deadline = async move {
            if stopping.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: finishing open requests");
            let _ = stop.send(true);
        });
        let (reload, reloads) = tokio::sync::mpsc::unbounded_channel();
        let reloader = reload.clone();
        if let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the configuration");
                    if reload.send(None).is_err() {
                        break;
                    }
                }
            });
        }
        let run = serve::run(path, config, shutdown, reloads, reloader, |bound| {
            let ldaps = bound
                .ldaps
                .map(|a| format!(" and ldaps://{a}"))
                .unwrap_or_default();
            println!(
                "phonebook-proxy: serving on ldap://{}{ldaps} and http://{}",
                bound.ldap, bound.http
            );
        });
        tokio::select! {
            result = run => Some(result),
            () = deadline => None,
        }
    });
    let Some(result) = outcome else {
        tracing::error!(
            grace_s = SHUTDOWN_GRACE.as_secs(),
            "shutdown did not finish in time (a request or a store operation is stuck on the disk); exiting without it"
        );
        // Not dropping the runtime: its tasks may be waiting on that disk. Everything a sync
        // acknowledged was flushed when it was applied.
        std::process::exit(1);
    };
    rt.shutdown_timeout(Duration::from_secs(1));
    result.map_err(|e| match e {
        ServeError::Config(message) => usage(message),
        other => runtime(other),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn select<'c>(config: &'c Config, names: &[String]) -> Result<Vec<&'c ConnectorConfig>, Failure> {
    if names.is_empty() {
        if config.connectors.is_empty() {
            return Err(usage(
                "the configuration has no [[connector]]; nothing to sync",
            ));
        }
        return Ok(config.connectors.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            config.connector(n).ok_or_else(|| {
                let known: Vec<_> = config.connectors.iter().map(|c| c.name.as_str()).collect();
                usage(format!(
                    "no connector named \"{n}\" (known: {})",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

/// Runs one connector and prints its outcome; true when it succeeded and was not held back.
async fn sync_one(
    config: &Config,
    connector: &ConnectorConfig,
    store: &Store,
    options: SyncOptions,
    json: bool,
    show: Option<Show>,
) -> bool {
    let bar = progress_bar(&connector.name);
    let result = sync::run(connector, &config.numbers, store, options, &|n| {
        bar.set_message(format!("{}: {n} entries pulled", connector.name));
        bar.tick();
    })
    .await;
    bar.finish_and_clear();
    let name = &connector.name;
    match result {
        Ok(report) => {
            for invalid in &report.invalid {
                eprintln!(
                    "connector \"{name}\": skipped {}: {}",
                    invalid.dn, invalid.reason
                );
            }
            if json {
                println!("{}", report_json(&report, &config.numbers));
            } else {
                if show == Some(Show::Mapped) {
                    print!("{}", mapped_view(&report, &config.numbers));
                }
                print_report(&report);
            }
            if report.held_back {
                eprintln!(
                    "connector \"{name}\": {}",
                    sync::held_back_message(
                        connector,
                        report.counts.removed,
                        report.counts.removed + report.counts.unchanged + report.counts.updated
                    )
                );
            }
            !report.held_back
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    json!({"connector": name, "dry_run": options.dry_run, "error": e.to_string()})
                );
            }
            eprintln!("connector \"{name}\": {e}");
            false
        }
    }
}

fn progress_bar(name: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(format!("{name}: connecting"));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

fn report_json(r: &SyncReport, plan: &phonebook_proxy::numbers::NumberPlan) -> String {
    ReportJson::new(r, plan).to_json()
}

/// The dry run's changes as a table aligned by display width (a CJK name takes two columns a
/// character), one line per number with its kind, as written and in E.164 — `-` marks a
/// number that has no E.164 form (an extension suffix, letters), so it stands out.
fn changes_table(changes: &[sync::Change]) -> String {
    use std::fmt::Write as _;
    use unicode_width::UnicodeWidthStr;
    const MAX_NAME: usize = 40;
    let cut = |s: &str| -> String {
        let mut out = String::new();
        for c in s.chars() {
            if (out.as_str().width() + unicode_width::UnicodeWidthChar::width(c).unwrap_or(0))
                > MAX_NAME
            {
                break;
            }
            out.push(c);
        }
        out
    };
    let names: Vec<String> = changes
        .iter()
        .map(|ch| cut(&ch.entry.display_name))
        .collect();
    let name_w = names.iter().map(|n| n.width()).max().unwrap_or(0).max(4);
    let written_w = changes
        .iter()
        .flat_map(|ch| ch.entry.all_phones().map(|(_, p)| p.written.width()))
        .max()
        .unwrap_or(0)
        .clamp(6, 32);
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.width())));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  {}  {}  {}  E.164",
        pad("ACTION", 7),
        pad("NAME", name_w),
        pad("TYPE", 8),
        pad("NUMBER", written_w)
    );
    for (ch, name) in changes.iter().zip(&names) {
        let mut first = true;
        let mut line = |kind: &str, written: &str, e164: &str| {
            let (action, name) = if first {
                (ch.action.as_str(), name.as_str())
            } else {
                ("", "")
            };
            first = false;
            let row = format!(
                "{}  {}  {}  {}  {e164}",
                pad(action, 7),
                pad(name, name_w),
                pad(kind, 8),
                pad(written, written_w)
            );
            let _ = writeln!(out, "{}", row.trim_end());
        };
        let mut any = false;
        for (kind, p) in ch.entry.all_phones() {
            any = true;
            line(
                kind_label(kind),
                &p.written,
                p.e164.as_deref().unwrap_or("-"),
            );
        }
        if !any {
            line("", "", "");
        }
    }
    out
}

/// `sync --dry-run --show mapped`: the first mapped records with every field (numbers as
/// written, in E.164 and as a desk phone dials them), then every dropped entry with why.
fn mapped_view(r: &SyncReport, plan: &phonebook_proxy::numbers::NumberPlan) -> String {
    use phonebook_proxy::numbers::NumberFormat;
    use std::fmt::Write as _;
    let mut out = String::new();
    let kept = r.counts.fetched - r.counts.filtered_out - r.counts.invalid;
    let _ = writeln!(
        out,
        "MAPPED ({} of {kept}, in display order)",
        r.mapped.len()
    );
    for e in &r.mapped {
        let _ = writeln!(out, "{}  [{}]", e.display_name, e.uid());
        let fields = [
            ("first_name", &e.first_name),
            ("last_name", &e.last_name),
            ("company", &e.company),
            ("department", &e.department),
            ("title", &e.title),
            ("email", &e.email),
            ("notes", &e.notes),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                let _ = writeln!(out, "  {name}: {v}");
            }
        }
        for (kind, p) in e.all_phones() {
            let _ = writeln!(
                out,
                "  {}: {}  (E.164 {}, dialable {})",
                kind_label(kind),
                p.written,
                p.e164.as_deref().unwrap_or("-"),
                plan.format(p, NumberFormat::Dialable)
            );
        }
    }
    let dropped = r.filtered.len() + r.invalid.len();
    if dropped > 0 {
        let _ = writeln!(
            out,
            "DROPPED (filtered out {}, invalid {})",
            r.counts.filtered_out, r.counts.invalid
        );
        for d in &r.filtered {
            let _ = writeln!(out, "  filtered out  {}: {}", d.dn, d.reason);
        }
        for d in &r.invalid {
            let _ = writeln!(out, "  invalid       {}: {}", d.dn, d.reason);
        }
    }
    out
}

fn kind_label(kind: phonebook_proxy::model::PhoneKind) -> &'static str {
    use phonebook_proxy::model::PhoneKind;
    match kind {
        PhoneKind::Business => "business",
        PhoneKind::Mobile => "mobile",
        PhoneKind::Home => "home",
        PhoneKind::Fax => "fax",
        PhoneKind::Other => "other",
    }
}

fn print_report(r: &SyncReport) {
    let c = r.counts;
    if (r.dry_run || r.held_back) && !r.changes.is_empty() {
        print!("{}", changes_table(&r.changes));
    }
    let verb = if r.dry_run { "would be " } else { "" };
    println!(
        "{}{}: fetched {}, filtered out {}, invalid {}; {verb}created {}, {verb}updated {}, {verb}removed {}, unchanged {}{} ({} ms)",
        r.connector,
        if r.dry_run { " (dry run)" } else { "" },
        c.fetched,
        c.filtered_out,
        c.invalid,
        c.created,
        c.updated,
        c.removed,
        c.unchanged,
        if r.held_back { "; HELD BACK" } else { "" },
        r.duration_ms
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonebook_proxy::model::Entry;
    use phonebook_proxy::numbers::NumberPlan;
    use unicode_width::UnicodeWidthStr;

    #[test]
    fn the_changes_table_aligns_wide_names_and_flags_numbers_without_e164() {
        let plan = NumberPlan::default();
        let mut wang = Entry::new("c", "1", "王伟");
        wang.business.push(plan.phone("+86 10 8765 4321"));
        wang.fax.push(plan.phone("ext. 12"));
        let mut anna = Entry::new("c", "2", "Anna Müller");
        anna.mobile.push(plan.phone("0170 1234567"));
        let changes = [
            sync::Change {
                action: sync::Action::Create,
                entry: wang,
            },
            sync::Change {
                action: sync::Action::Remove,
                entry: anna,
            },
        ];
        let table = changes_table(&changes);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        // Every row's kind starts at the same display column as the TYPE heading.
        let column = |line: &str, word: &str| line.find(word).map(|at| line[..at].width());
        let type_at = column(lines[0], "TYPE");
        assert_eq!(column(lines[1], "business"), type_at, "{table}");
        assert_eq!(column(lines[2], "fax"), type_at, "{table}");
        assert_eq!(column(lines[3], "mobile"), type_at, "{table}");
        assert!(
            lines[2].trim_end().ends_with("ext. 12  -") || lines[2].ends_with(" -"),
            "{table}"
        );
        assert!(lines[3].ends_with("+491701234567"), "{table}");
        assert!(
            lines[2].starts_with(' '),
            "a second number of one entry: {table}"
        );
    }
}
