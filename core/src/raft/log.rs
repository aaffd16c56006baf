//! The replicated log: entries `first_index..=last_index` kept in memory, index 0 being the
//! empty sentinel of term 0. Entries below `first_index` were compacted away (applied
//! everywhere they are needed); `compacted_term` remembers the term at the boundary so the
//! AppendEntries consistency check still works there.

use std::collections::VecDeque;

use crate::wire::raft::LogEntry;

#[derive(Debug)]
pub struct RaftLog {
    /// Index of `entries[0]`.
    first_index: u64,
    entries: VecDeque<LogEntry>,
    /// Term of entry `first_index − 1` (0 for the sentinel).
    compacted_term: u64,
    /// Request-body bytes held (the byte budget of `raft.max_log_bytes`).
    body_bytes: u64,
}

impl Default for RaftLog {
    fn default() -> Self {
        RaftLog {
            first_index: 1,
            entries: VecDeque::new(),
            compacted_term: 0,
            body_bytes: 0,
        }
    }
}

fn body_len(e: &LogEntry) -> u64 {
    e.body.as_ref().map_or(0, |b| b.len() as u64)
}

impl RaftLog {
    pub fn last_index(&self) -> u64 {
        self.first_index + self.entries.len() as u64 - 1
    }

    pub fn first_index(&self) -> u64 {
        self.first_index
    }

    pub fn last_term(&self) -> u64 {
        self.entries.back().map_or(self.compacted_term, |e| e.term)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Request-body bytes the log holds.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Entry `index` gained a body (recovered, or a late multicast): counts its bytes.
    pub fn set_body(&mut self, index: u64, body: Vec<u8>) {
        let Some(e) = index
            .checked_sub(self.first_index)
            .and_then(|i| self.entries.get_mut(i as usize))
        else {
            return;
        };
        self.body_bytes = self.body_bytes - body_len(e) + body.len() as u64;
        e.body = Some(body);
    }

    /// Term of the entry at `index`: `None` past the end or below the compacted boundary.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index + 1 == self.first_index {
            return Some(self.compacted_term);
        }
        self.get(index).map(|e| e.term)
    }

    pub fn get(&self, index: u64) -> Option<&LogEntry> {
        if index < self.first_index {
            return None;
        }
        self.entries.get((index - self.first_index) as usize)
    }

    pub fn append(&mut self, entry: LogEntry) -> u64 {
        self.body_bytes += body_len(&entry);
        self.entries.push_back(entry);
        self.last_index()
    }

    /// Removes every entry at `index` and after (a conflict found by AppendEntries) and
    /// returns them, oldest first (their bodies may still serve the same requests ordered
    /// again by the new leader).
    pub fn truncate_from(&mut self, index: u64) -> Vec<LogEntry> {
        let at = index.saturating_sub(self.first_index) as usize;
        // index < first_index is never reached: committed (and so compacted) entries never
        // conflict; it would remove everything.
        let removed: Vec<LogEntry> = self.entries.drain(at.min(self.entries.len())..).collect();
        self.body_bytes -= removed.iter().map(body_len).sum::<u64>();
        removed
    }

    /// Up to `max` entries starting at `from` (cloned, for an AppendEntries message).
    pub fn slice(&self, from: u64, max: usize) -> Vec<LogEntry> {
        self.range(from, max).cloned().collect()
    }

    /// [`RaftLog::slice`] without bodies (metadata only), never copying one.
    pub fn slice_meta(&self, from: u64, max: usize) -> Vec<LogEntry> {
        self.range(from, max)
            .map(LogEntry::metadata_clone)
            .collect()
    }

    /// How many entries from `from` (at most `max`, at least one if there is one) fit in
    /// `max_bytes`, each counting `size(entry)`: the first always goes, the others while the
    /// running total stays within the bound.
    pub fn fit(
        &self,
        from: u64,
        max: usize,
        max_bytes: usize,
        size: impl Fn(&LogEntry) -> usize,
    ) -> usize {
        let mut bytes = 0;
        self.range(from, max)
            .take_while(|e| {
                bytes += size(e);
                bytes <= max_bytes
            })
            .count()
            .max(1)
    }

    fn range(&self, from: u64, max: usize) -> impl Iterator<Item = &LogEntry> {
        let start = if from < self.first_index {
            self.entries.len()
        } else {
            ((from - self.first_index) as usize).min(self.entries.len())
        };
        let end = start.saturating_add(max).min(self.entries.len());
        self.entries.range(start..end)
    }

    /// Drops entries up to and including `index` (never past the last entry).
    pub fn compact_to(&mut self, index: u64) {
        let index = index.min(self.last_index());
        while self.first_index <= index {
            let e = self.entries.pop_front().expect("index within log");
            self.body_bytes -= body_len(&e);
            self.compacted_term = e.term;
            self.first_index += 1;
        }
    }

    /// Drops every entry: the log continues after a snapshot at `index` of `term`.
    pub fn reset_to(&mut self, index: u64, term: u64) {
        self.entries.clear();
        self.body_bytes = 0;
        self.first_index = index + 1;
        self.compacted_term = term;
    }

    /// Whether a log ending at (`last_index`, `last_term`) is at least as up to date as this
    /// one (Raft §5.4.1: compare last terms, then lengths).
    pub fn candidate_is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Policy;
    use std::net::SocketAddrV4;

    fn e(term: u64) -> LogEntry {
        LogEntry {
            term,
            client: SocketAddrV4::new([1, 1, 1, 1].into(), 1),
            req_id: 0,
            policy: Policy::ReplicatedRoute,
            replier: 0,
            body: None,
        }
    }

    #[test]
    fn append_truncate_compact() {
        let mut log = RaftLog::default();
        assert_eq!((log.last_index(), log.last_term()), (0, 0));
        assert_eq!(log.term_at(0), Some(0));
        for t in [1, 1, 2, 3] {
            log.append(e(t));
        }
        assert_eq!((log.last_index(), log.last_term()), (4, 3));
        log.truncate_from(3);
        assert_eq!(log.last_index(), 2);
        log.append(e(4));
        log.compact_to(2);
        assert_eq!(log.first_index(), 3);
        assert_eq!(log.term_at(2), Some(1));
        assert_eq!(log.term_at(1), None);
        assert_eq!(log.term_at(3), Some(4));
        assert_eq!(log.slice(3, 10).len(), 1);
        assert!(log.candidate_is_up_to_date(3, 4));
        assert!(!log.candidate_is_up_to_date(10, 3));
        assert!(log.candidate_is_up_to_date(1, 5));
    }

    #[test]
    fn body_bytes_follow_every_change() {
        let mut log = RaftLog::default();
        let with = |term, n: usize| LogEntry {
            body: Some(vec![0; n]),
            ..e(term)
        };
        log.append(with(1, 10));
        log.append(e(1));
        log.append(with(1, 5));
        assert_eq!(log.body_bytes(), 15);
        log.set_body(2, vec![0; 7]);
        assert_eq!(log.body_bytes(), 22);
        log.set_body(2, vec![0; 1]);
        assert_eq!(log.body_bytes(), 16);
        log.truncate_from(3);
        assert_eq!(log.body_bytes(), 11);
        log.compact_to(1);
        assert_eq!(log.body_bytes(), 1);
        log.reset_to(9, 2);
        assert_eq!(log.body_bytes(), 0);
    }
}
