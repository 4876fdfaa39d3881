//! The run history of a connector: its last [`HISTORY`] runs and the health they add up to
//! (when it last succeeded, how many runs have failed since), as status, metrics and the
//! admin page show them. Plain data; the store keeps it durable.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Runs kept per connector.
pub const HISTORY: usize = 50;

/// How a sync ended, as recorded for status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Changes were written.
    Applied,
    /// The upstream matched the store; nothing was written.
    Unchanged,
    /// The deletion guard held the changes back.
    HeldBack,
    /// The pull or the apply failed; the store kept its previous state.
    Failed,
}

/// The counts of one run, as `sync --json` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub fetched: usize,
    pub filtered_out: usize,
    pub invalid: usize,
    pub created: usize,
    pub updated: usize,
    pub removed: usize,
    pub unchanged: usize,
}

/// One run of a connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Seconds since the Unix epoch at which the run finished.
    pub finished_at: u64,
    pub duration_ms: u64,
    pub outcome: Outcome,
    pub counts: Counts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an operator's monitoring asks of a connector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// When the last run that brought the book up to date (applied or unchanged) finished,
    /// in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<u64>,
    /// Runs since then that did not (failed, or held back by the deletion guard): the book
    /// has been as old as `last_success` for that many runs.
    #[serde(default)]
    pub consecutive_failures: u64,
}

impl Health {
    /// The health after `run`.
    pub fn after(self, run: &RunRecord) -> Health {
        match run.outcome {
            Outcome::Applied | Outcome::Unchanged => Health {
                last_success: Some(run.finished_at),
                consecutive_failures: 0,
            },
            Outcome::HeldBack | Outcome::Failed => Health {
                last_success: self.last_success,
                consecutive_failures: self.consecutive_failures.saturating_add(1),
            },
        }
    }
}

/// One connector's runs, newest last, at most [`HISTORY`], with their sequence numbers (the
/// store's keys) and the health after the newest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunLog {
    runs: VecDeque<(u64, RunRecord)>,
    pub health: Health,
}

impl RunLog {
    /// A log read back from the store: `runs` in any order, `health` as stored (or, for a
    /// store written before health was kept, derived from the runs).
    pub fn restore(mut runs: Vec<(u64, RunRecord)>, health: Option<Health>) -> RunLog {
        runs.sort_unstable_by_key(|(seq, _)| *seq);
        let skip = runs.len().saturating_sub(HISTORY);
        let runs: VecDeque<_> = runs.into_iter().skip(skip).collect();
        let health = health.unwrap_or_else(|| {
            runs.iter()
                .fold(Health::default(), |h, (_, run)| h.after(run))
        });
        RunLog { runs, health }
    }

    /// Adds `run`: its sequence number, and the one that falls out of the history.
    pub fn push(&mut self, run: RunRecord) -> (u64, Option<u64>) {
        let seq = self.runs.back().map_or(0, |(s, _)| s + 1);
        self.health = self.health.after(&run);
        self.runs.push_back((seq, run));
        let dropped = (self.runs.len() > HISTORY)
            .then(|| self.runs.pop_front().map(|(s, _)| s))
            .flatten();
        (seq, dropped)
    }

    /// The sequence number the next run gets.
    pub fn next_seq(&self) -> u64 {
        self.runs.back().map_or(0, |(s, _)| s + 1)
    }

    pub fn last(&self) -> Option<&RunRecord> {
        self.runs.back().map(|(_, r)| r)
    }

    /// The runs, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &RunRecord> {
        self.runs.iter().rev().map(|(_, r)| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(at: u64, outcome: Outcome) -> RunRecord {
        RunRecord {
            finished_at: at,
            duration_ms: 1,
            outcome,
            counts: Counts::default(),
            error: None,
        }
    }

    #[test]
    fn health_counts_failures_since_the_last_success() {
        let mut log = RunLog::default();
        assert_eq!(log.health, Health::default());
        log.push(run(10, Outcome::Applied));
        log.push(run(20, Outcome::Failed));
        log.push(run(30, Outcome::HeldBack));
        assert_eq!(
            log.health,
            Health {
                last_success: Some(10),
                consecutive_failures: 2
            }
        );
        log.push(run(40, Outcome::Unchanged));
        assert_eq!(
            log.health,
            Health {
                last_success: Some(40),
                consecutive_failures: 0
            }
        );
    }

    #[test]
    fn the_history_keeps_the_newest_runs_and_names_the_one_it_drops() {
        let mut log = RunLog::default();
        for i in 0..HISTORY as u64 {
            assert_eq!(log.push(run(i, Outcome::Failed)), (i, None));
        }
        assert_eq!(
            log.push(run(99, Outcome::Failed)),
            (HISTORY as u64, Some(0))
        );
        assert_eq!(log.newest_first().count(), HISTORY);
        assert_eq!(log.newest_first().next().map(|r| r.finished_at), Some(99));
        assert_eq!(log.health.consecutive_failures, HISTORY as u64 + 1);
        assert_eq!(log.health.last_success, None);
    }

    #[test]
    fn a_restored_log_orders_trims_and_derives_health() {
        let runs = (0..60u64)
            .rev()
            .map(|i| {
                (
                    i,
                    run(
                        i,
                        if i == 55 {
                            Outcome::Applied
                        } else {
                            Outcome::Failed
                        },
                    ),
                )
            })
            .collect();
        let log = RunLog::restore(runs, None);
        assert_eq!(log.newest_first().count(), HISTORY);
        assert_eq!(log.next_seq(), 60);
        assert_eq!(
            log.health,
            Health {
                last_success: Some(55),
                consecutive_failures: 4
            }
        );
        let stored = Health {
            last_success: Some(1),
            consecutive_failures: 70,
        };
        assert_eq!(RunLog::restore(Vec::new(), Some(stored)).health, stored);
    }
}
