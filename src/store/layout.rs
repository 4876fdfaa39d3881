//! How the book lies in sled: the keys of the one tree, entries cut into small pieces and
//! read back, the run history and the generation. The store's handle and worker thread
//! (`store.rs`) call these; nothing else knows the layout.

use super::*;

/// Key prefixes inside the one tree: `b\0<connector>\0<piece, u32 BE>` holds a connector's
/// entries, `n\0<connector>` its number of pieces.
pub(super) const BOOK: &[u8] = b"b\0";
pub(super) const CHUNKS: &[u8] = b"n\0";

/// Bytes per stored value: small enough that a leaf node full of them stays far below
/// sled's blob threshold (about 128 KiB, see the module comment).
pub(super) const PIECE: usize = 3 * 1024;
/// `r\0<connector>`: the last run, as stores before the run history kept it (read only).
pub(super) const RUN: &[u8] = b"r\0";
/// `h\0<connector>\0<seq, u64 BE>`: the run history, the last [`runs::HISTORY`] runs.
pub(super) const HISTORY_PREFIX: &[u8] = b"h\0";
/// `s\0<connector>`: the connector's [`Health`] after its last run.
pub(super) const HEALTH: &[u8] = b"s\0";
pub(super) const GENERATION: &[u8] = b"generation";

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn history_key(connector: &str, seq: u64) -> Vec<u8> {
    [
        HISTORY_PREFIX,
        connector.as_bytes(),
        b"\0",
        &seq.to_be_bytes(),
    ]
    .concat()
}

pub(super) fn read_generation(db: &sled::Db, shown: &str) -> Result<u64, StoreError> {
    Ok(db
        .get(GENERATION)
        .map_err(|e| sled_error(shown, e))?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes))
}

pub(super) fn read_book(
    db: &sled::Db,
    prefix: &[u8],
    shown: &str,
) -> Result<Vec<Entry>, StoreError> {
    let mut decoder = Decoder::default();
    for kv in db.scan_prefix(prefix) {
        let (_, v) = kv.map_err(|e| sled_error(shown, e))?;
        decoder.push(&v)?;
    }
    decoder.finish()
}

/// Every connector's run log: its history and health, or for a store written before the
/// history, its one last run.
pub(super) fn read_logs(db: &sled::Db, shown: &str) -> Result<HashMap<String, RunLog>, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
    let mut runs: HashMap<String, Vec<(u64, RunRecord)>> = HashMap::new();
    for kv in db.scan_prefix(HISTORY_PREFIX) {
        let (k, v) = kv.map_err(|e| sled_error(shown, e))?;
        let rest = &k[HISTORY_PREFIX.len()..];
        let Some(split) = rest.len().checked_sub(9).filter(|at| rest[*at] == 0) else {
            return Err(StoreError::Corrupt(
                "a run history key without its number".into(),
            ));
        };
        let seq = <[u8; 8]>::try_from(&rest[split + 1..]).map_or(0, u64::from_be_bytes);
        let name = String::from_utf8_lossy(&rest[..split]).into_owned();
        runs.entry(name)
            .or_default()
            .push((seq, serde_json::from_slice(&v).map_err(corrupt)?));
    }
    for kv in db.scan_prefix(RUN) {
        let (k, v) = kv.map_err(|e| sled_error(shown, e))?;
        let name = String::from_utf8_lossy(&k[RUN.len()..]).into_owned();
        if let std::collections::hash_map::Entry::Vacant(slot) = runs.entry(name) {
            slot.insert(vec![(0, serde_json::from_slice(&v).map_err(corrupt)?)]);
        }
    }
    let mut logs = HashMap::new();
    for (name, runs) in runs {
        let health = db
            .get([HEALTH, name.as_bytes()].concat())
            .map_err(|e| sled_error(shown, e))?
            .map(|v| serde_json::from_slice::<Health>(&v))
            .transpose()
            .map_err(corrupt)?;
        logs.insert(name, RunLog::restore(runs, health));
    }
    Ok(logs)
}

pub(super) fn book_prefix(connector: &str) -> Vec<u8> {
    [BOOK, connector.as_bytes(), b"\0"].concat()
}

pub(super) fn chunk_key(connector: &str, chunk: u32) -> Vec<u8> {
    [book_prefix(connector).as_slice(), &chunk.to_be_bytes()].concat()
}

pub(super) fn chunks_key(connector: &str) -> Vec<u8> {
    [CHUNKS, connector.as_bytes()].concat()
}

/// A connector's entries as stored: JSON entries back to back, cut every [`PIECE`] bytes.
pub(super) fn encode_book(entries: &[&Entry]) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut pieces = Pieces::default();
    for entry in entries {
        serde_json::to_writer(&mut pieces, entry)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    }
    if !pieces.current.is_empty() {
        pieces.done.push(pieces.current);
    }
    Ok(pieces.done)
}

#[derive(Default)]
pub(super) struct Pieces {
    done: Vec<Vec<u8>>,
    current: Vec<u8>,
}

impl std::io::Write for Pieces {
    fn write(&mut self, mut data: &[u8]) -> std::io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            let take = (PIECE - self.current.len()).min(data.len());
            self.current.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.current.len() == PIECE {
                self.done.push(std::mem::replace(
                    &mut self.current,
                    Vec::with_capacity(PIECE),
                ));
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Stored pieces back into entries, one piece at a time (never the whole book's text at
/// once): a stream of JSON values, each an entry or — in stores written before pieces — an
/// array of entries; a piece may end inside an entry, which the next one completes.
#[derive(Default)]
pub(super) struct Decoder {
    pending: Vec<u8>,
    entries: Vec<Entry>,
}

impl Decoder {
    pub(super) fn push(&mut self, piece: &[u8]) -> Result<(), StoreError> {
        self.pending.extend_from_slice(piece);
        let mut used = 0;
        loop {
            let rest = &self.pending[used..];
            let Some(start) = rest.iter().position(|b| !b.is_ascii_whitespace()) else {
                used = self.pending.len();
                break;
            };
            let rest = &rest[start..];
            let (parsed, offset) = if rest[0] == b'[' {
                let mut values =
                    serde_json::Deserializer::from_slice(rest).into_iter::<Vec<Entry>>();
                let parsed = values
                    .next()
                    .map(|r| r.map(|many| self.entries.extend(many)));
                (parsed, values.byte_offset())
            } else {
                let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Entry>();
                let parsed = values.next().map(|r| r.map(|one| self.entries.push(one)));
                (parsed, values.byte_offset())
            };
            match parsed {
                None => break,
                Some(Ok(())) => used += start + offset,
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => return Err(StoreError::Corrupt(e.to_string())),
            }
        }
        self.pending.drain(..used);
        Ok(())
    }

    pub(super) fn finish(self) -> Result<Vec<Entry>, StoreError> {
        if self.pending.iter().any(|b| !b.is_ascii_whitespace()) {
            return Err(StoreError::Corrupt(
                "a stored book ends inside an entry".into(),
            ));
        }
        Ok(self.entries)
    }
}
