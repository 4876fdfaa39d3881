//! The values of RFC 4533's content synchronization (syncrepl) controls and messages, read
//! from the bytes an upstream sends and written for the request.
//!
//! ldap3 has parsers for these (`SyncState`, `SyncDone`, `parse_syncinfo`), but they panic on
//! a value they do not expect, and nothing an upstream sends may panic this server. So they
//! are read here with [`crate::ber`]: anything malformed is an error naming what was wrong,
//! and a set of entry UUIDs is bounded by the caller.
//!
//! ```text
//! syncRequestValue ::= SEQUENCE { mode ENUMERATED { refreshOnly (1), refreshAndPersist (3) },
//!                                 cookie syncCookie OPTIONAL, reloadHint BOOLEAN DEFAULT FALSE }
//! syncStateValue   ::= SEQUENCE { state ENUMERATED { present (0), add (1), modify (2),
//!                                 delete (3) }, entryUUID syncUUID, cookie syncCookie OPTIONAL }
//! syncDoneValue    ::= SEQUENCE { cookie syncCookie OPTIONAL,
//!                                 refreshDeletes BOOLEAN DEFAULT FALSE }
//! syncInfoValue    ::= CHOICE { newcookie [0] syncCookie,
//!     refreshDelete  [1] SEQUENCE { cookie OPTIONAL, refreshDone BOOLEAN DEFAULT TRUE },
//!     refreshPresent [2] SEQUENCE { cookie OPTIONAL, refreshDone BOOLEAN DEFAULT TRUE },
//!     syncIdSet      [3] SEQUENCE { cookie OPTIONAL, refreshDeletes BOOLEAN DEFAULT FALSE,
//!                                   syncUUIDs SET OF syncUUID } }
//! ```

use crate::ber::{self, Lengths, BOOLEAN, ENUMERATED, OCTET_STRING, SEQUENCE, SET};

pub const SYNC_REQUEST_OID: &str = "1.3.6.1.4.1.4203.1.9.1.1";
pub const SYNC_STATE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.2";
pub const SYNC_DONE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.3";
/// The OID of the Sync Info intermediate response.
pub const SYNC_INFO_OID: &str = "1.3.6.1.4.1.4203.1.9.1.4";

/// An entryUUID as syncrepl carries it: 16 octets.
pub type Uuid = [u8; 16];

/// What the request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The changes since the cookie, then the search ends.
    RefreshOnly,
    /// The same, then the search stays open and each change arrives as it happens.
    RefreshAndPersist,
}

/// The value of a Sync Request control.
pub fn request(mode: Mode, cookie: Option<&[u8]>, reload_hint: bool) -> Vec<u8> {
    let mut body = Vec::new();
    let mode = match mode {
        Mode::RefreshOnly => 1,
        Mode::RefreshAndPersist => 3,
    };
    ber::put_tlv(&mut body, ENUMERATED, &[mode]);
    if let Some(cookie) = cookie {
        ber::put_tlv(&mut body, OCTET_STRING, cookie);
    }
    if reload_hint {
        ber::put_tlv(&mut body, BOOLEAN, &[0xff]);
    }
    let mut out = Vec::new();
    ber::put_tlv(&mut out, SEQUENCE, &body);
    out
}

/// An entry's state in a Sync State control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Unchanged since the cookie (sent in the present phase, without attributes).
    Present,
    Add,
    Modify,
    /// Gone (sent without attributes).
    Delete,
}

/// The value of a Sync State control, attached to each entry of a sync search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    pub state: State,
    pub entry_uuid: Uuid,
    pub cookie: Option<Vec<u8>>,
}

/// The value of a Sync Done control, attached to the search's result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncDone {
    pub cookie: Option<Vec<u8>>,
    /// The entries not sent were deleted (instead of: the entries not sent are unchanged).
    pub refresh_deletes: bool,
}

/// The value of a Sync Info intermediate response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncInfo {
    NewCookie(Vec<u8>),
    /// The end of a refresh's delete phase (the entries sent next as `Delete` are gone).
    RefreshDelete {
        cookie: Option<Vec<u8>>,
        refresh_done: bool,
    },
    /// The end of a refresh's present phase (the entries not sent as `Present` are gone).
    RefreshPresent {
        cookie: Option<Vec<u8>>,
        refresh_done: bool,
    },
    /// Many entries at once: deleted (`refresh_deletes`) or present.
    SyncIdSet {
        cookie: Option<Vec<u8>>,
        refresh_deletes: bool,
        uuids: Vec<Uuid>,
    },
}

/// Why a value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what} from the upstream: {why}")]
pub struct Malformed {
    what: &'static str,
    why: &'static str,
}

fn malformed(what: &'static str, why: &'static str) -> Malformed {
    Malformed { what, why }
}

/// Reads consecutive elements of one SEQUENCE's content.
struct Fields<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Fields<'a> {
    /// The content of the whole value, which must be one `tag` element and nothing more.
    fn of(value: &'a [u8], tag: u8, what: &'static str) -> Result<Self, Malformed> {
        match ber::element(value, Lengths::Definite) {
            Some((found, content, [])) if found == tag => Ok(Fields {
                rest: content,
                what,
            }),
            Some((found, _, [])) if found != tag => Err(malformed(what, "unexpected tag")),
            Some(_) => Err(malformed(what, "bytes after the value")),
            None => Err(malformed(what, "cut short or an odd length")),
        }
    }

    /// The next element's content if its tag is `tag`.
    fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, Malformed> {
        if self.rest.is_empty() || self.rest[0] != tag {
            return Ok(None);
        }
        let (_, content, rest) = ber::element(self.rest, Lengths::Definite)
            .ok_or_else(|| malformed(self.what, "cut short or an odd length"))?;
        self.rest = rest;
        Ok(Some(content))
    }

    fn required(&mut self, tag: u8, why: &'static str) -> Result<&'a [u8], Malformed> {
        self.optional(tag)?.ok_or_else(|| malformed(self.what, why))
    }

    fn boolean(&mut self, default: bool) -> Result<bool, Malformed> {
        match self.optional(BOOLEAN)? {
            None => Ok(default),
            Some(content) => {
                ber::boolean(content).ok_or_else(|| malformed(self.what, "a BOOLEAN of one octet"))
            }
        }
    }

    fn end(self) -> Result<(), Malformed> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(malformed(self.what, "unexpected fields"))
        }
    }
}

fn uuid(content: &[u8], what: &'static str) -> Result<Uuid, Malformed> {
    content
        .try_into()
        .map_err(|_| malformed(what, "an entryUUID is not 16 octets"))
}

/// Reads a Sync State control's value.
pub fn sync_state(value: &[u8]) -> Result<SyncState, Malformed> {
    const WHAT: &str = "Sync State control";
    let mut f = Fields::of(value, SEQUENCE, WHAT)?;
    let state = match ber::small_enumerated(f.required(ENUMERATED, "no state")?) {
        Some(0) => State::Present,
        Some(1) => State::Add,
        Some(2) => State::Modify,
        Some(3) => State::Delete,
        _ => return Err(malformed(WHAT, "an unknown state")),
    };
    let entry_uuid = uuid(f.required(OCTET_STRING, "no entryUUID")?, WHAT)?;
    let cookie = f.optional(OCTET_STRING)?.map(<[u8]>::to_vec);
    f.end()?;
    Ok(SyncState {
        state,
        entry_uuid,
        cookie,
    })
}

/// Reads a Sync Done control's value.
pub fn sync_done(value: &[u8]) -> Result<SyncDone, Malformed> {
    let mut f = Fields::of(value, SEQUENCE, "Sync Done control")?;
    let cookie = f.optional(OCTET_STRING)?.map(<[u8]>::to_vec);
    let refresh_deletes = f.boolean(false)?;
    f.end()?;
    Ok(SyncDone {
        cookie,
        refresh_deletes,
    })
}

/// Reads a Sync Info message's value, keeping at most `max_uuids` entry UUIDs of a set (a
/// larger set is refused: the caller falls back to a full run).
pub fn sync_info(value: &[u8], max_uuids: usize) -> Result<SyncInfo, Malformed> {
    const WHAT: &str = "Sync Info message";
    let Some(&tag) = value.first() else {
        return Err(malformed(WHAT, "empty"));
    };
    if tag == ber::CONTEXT {
        let f = Fields::of(value, ber::CONTEXT, WHAT)?;
        return Ok(SyncInfo::NewCookie(f.rest.to_vec()));
    }
    let choice = tag & !(ber::CONTEXT | ber::CONSTRUCTED);
    if tag & (ber::CLASS | ber::CONSTRUCTED) != ber::CONTEXT | ber::CONSTRUCTED || choice > 3 {
        return Err(malformed(WHAT, "an unknown choice"));
    }
    let mut f = Fields::of(value, tag, WHAT)?;
    let cookie = f.optional(OCTET_STRING)?.map(<[u8]>::to_vec);
    let info = match choice {
        1 => SyncInfo::RefreshDelete {
            cookie,
            refresh_done: f.boolean(true)?,
        },
        2 => SyncInfo::RefreshPresent {
            cookie,
            refresh_done: f.boolean(true)?,
        },
        _ => {
            let refresh_deletes = f.boolean(false)?;
            let set = f.required(SET, "no syncUUIDs")?;
            let mut uuids = Vec::new();
            let mut rest = set;
            while !rest.is_empty() {
                let (tag, content, next) = ber::element(rest, Lengths::Definite)
                    .ok_or_else(|| malformed(WHAT, "cut short or an odd length"))?;
                if tag != OCTET_STRING {
                    return Err(malformed(WHAT, "a syncUUID is not an OCTET STRING"));
                }
                if uuids.len() == max_uuids {
                    return Err(malformed(WHAT, "more entry UUIDs than the import allows"));
                }
                uuids.push(uuid(content, WHAT)?);
                rest = next;
            }
            SyncInfo::SyncIdSet {
                cookie,
                refresh_deletes,
                uuids,
            }
        }
    };
    f.end()?;
    Ok(info)
}

/// An entryUUID as OpenLDAP writes it in text (`8-4-4-4-12` lower-case hex), the form the
/// `entryUUID` attribute has, so a deleted entry can be found by its id.
pub fn uuid_text(uuid: &Uuid) -> String {
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        ber::put_tlv(&mut out, tag, content);
        out
    }

    const UUID: Uuid = [
        0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ];

    #[test]
    fn states_done_and_info_read_back_as_rfc_4533_writes_them() {
        let state = tlv(
            SEQUENCE,
            &[
                tlv(ENUMERATED, &[3]),
                tlv(OCTET_STRING, &UUID),
                tlv(OCTET_STRING, b"c"),
            ]
            .concat(),
        );
        assert_eq!(
            sync_state(&state),
            Ok(SyncState {
                state: State::Delete,
                entry_uuid: UUID,
                cookie: Some(b"c".to_vec()),
            })
        );
        let done = tlv(
            SEQUENCE,
            &[tlv(OCTET_STRING, b"rid=1"), tlv(BOOLEAN, &[0xff])].concat(),
        );
        assert_eq!(
            sync_done(&done),
            Ok(SyncDone {
                cookie: Some(b"rid=1".to_vec()),
                refresh_deletes: true,
            })
        );
        assert_eq!(sync_done(&tlv(SEQUENCE, &[])), Ok(SyncDone::default()));
        assert_eq!(
            sync_info(&tlv(0x80, b"new"), 10),
            Ok(SyncInfo::NewCookie(b"new".to_vec()))
        );
        assert_eq!(
            sync_info(&tlv(0xa2, &[]), 10),
            Ok(SyncInfo::RefreshPresent {
                cookie: None,
                refresh_done: true,
            })
        );
        assert_eq!(
            sync_info(
                &tlv(
                    0xa1,
                    &[tlv(OCTET_STRING, b"k"), tlv(BOOLEAN, &[0])].concat()
                ),
                10
            ),
            Ok(SyncInfo::RefreshDelete {
                cookie: Some(b"k".to_vec()),
                refresh_done: false,
            })
        );
        let set = tlv(
            0xa3,
            &[
                tlv(BOOLEAN, &[1]),
                tlv(
                    SET,
                    &[tlv(OCTET_STRING, &UUID), tlv(OCTET_STRING, &[0; 16])].concat(),
                ),
            ]
            .concat(),
        );
        assert_eq!(
            sync_info(&set, 10),
            Ok(SyncInfo::SyncIdSet {
                cookie: None,
                refresh_deletes: true,
                uuids: vec![UUID, [0; 16]],
            })
        );
        assert!(sync_info(&set, 1).is_err(), "more UUIDs than allowed");
        assert_eq!(uuid_text(&UUID), "12345678-9abc-def0-0123-456789abcdef");
    }

    #[test]
    fn the_request_is_what_openldap_reads() {
        // RFC 4533's encoding; tests/content_sync.rs sends it to a real slapd, which accepts it.
        assert_eq!(
            request(Mode::RefreshOnly, Some(b"rid=000"), false),
            tlv(
                SEQUENCE,
                &[tlv(ENUMERATED, &[1]), tlv(OCTET_STRING, b"rid=000")].concat()
            )
        );
        assert_eq!(
            request(Mode::RefreshAndPersist, None, true),
            tlv(
                SEQUENCE,
                &[tlv(ENUMERATED, &[3]), tlv(BOOLEAN, &[0xff])].concat()
            )
        );
    }

    #[test]
    fn anything_malformed_is_an_error_never_a_panic() {
        let good = tlv(
            SEQUENCE,
            &[tlv(ENUMERATED, &[1]), tlv(OCTET_STRING, &UUID)].concat(),
        );
        assert!(sync_state(&good).is_ok());
        // Every prefix, every single-byte change and some odd values: never a panic.
        for cut in 0..good.len() {
            assert!(sync_state(&good[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..good.len() {
            for b in [0x00, 0x01, 0x30, 0x7f, 0x80, 0x84, 0xff] {
                let mut v = good.clone();
                v[i] = b;
                let _ = sync_state(&v);
                let _ = sync_done(&v);
                let _ = sync_info(&v, 4);
            }
        }
        let bad = [
            tlv(
                SEQUENCE,
                &[tlv(ENUMERATED, &[9]), tlv(OCTET_STRING, &UUID)].concat(),
            ),
            tlv(
                SEQUENCE,
                &[tlv(ENUMERATED, &[1]), tlv(OCTET_STRING, &UUID[..15])].concat(),
            ),
            tlv(SEQUENCE, &[tlv(ENUMERATED, &[1])].concat()),
            [good.clone(), vec![0]].concat(),
        ];
        for v in bad {
            assert!(sync_state(&v).is_err(), "{v:02x?}");
        }
        assert!(sync_info(&[], 4).is_err());
        assert!(sync_info(&tlv(0xa4, &[]), 4).is_err(), "no fifth choice");
        assert!(sync_info(&tlv(0xa3, &[tlv(BOOLEAN, &[1])].concat()), 4).is_err());
        assert!(sync_done(&tlv(SEQUENCE, &[tlv(BOOLEAN, &[1, 1])].concat())).is_err());
        let message = sync_state(&[0x30, 0x03, 0x0a, 0x01, 0x09])
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "malformed Sync State control from the upstream: an unknown state"
        );
    }
}
