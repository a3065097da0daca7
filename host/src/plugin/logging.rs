//! What a plugin (or anyone who sends the host an event) can do to the host's log: as little as
//! possible.
//!
//! Contract:
//! - Volume: `LogBudget` is one token bucket per runtime, shared by every call of every plugin
//!   generation: `per_sec` lines a second, bursts of 4 seconds' worth. A line over budget is
//!   dropped and counted; the next line that gets through is preceded by one warning that says
//!   how many were dropped. The per-call cap in `sandbox` applies as well, so one call cannot
//!   spend a whole burst. The clock can be passed in, so the bucket is tested without sleeping.
//! - Shape: `escape_controls` turns every control character (and the Unicode line and paragraph
//!   separators) into a visible escape, so text from a guest cannot start a new log line or
//!   move the terminal's cursor. `OneLine` does the same to whole formatted events on their way
//!   to stderr (all but the final newline), so an event id or any other field from outside the
//!   host cannot forge a line either, whoever logs it. tracing-subscriber already escapes ESC
//!   and C1 codes in field values, but not newlines or carriage returns.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Seconds' worth of lines a burst may use.
const BURST_SECONDS: u32 = 4;

/// A line's fate under the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Write it; `dropped` lines were dropped since the last admitted one.
    Yes {
        dropped: u64,
    },
    No,
}

pub struct LogBudget {
    per_sec: u32,
    bucket: Mutex<Bucket>,
    dropped_total: AtomicU64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    dropped: u64,
}

impl LogBudget {
    pub fn new(per_sec: u32) -> LogBudget {
        LogBudget {
            per_sec,
            bucket: Mutex::new(Bucket {
                tokens: f64::from(per_sec.saturating_mul(BURST_SECONDS)),
                at: Instant::now(),
                dropped: 0,
            }),
            dropped_total: AtomicU64::new(0),
        }
    }

    /// Whether one more line may be written now.
    pub fn admit(&self) -> Admit {
        self.admit_at(Instant::now())
    }

    /// `admit` at a given time (monotonic; an earlier `now` adds nothing).
    pub fn admit_at(&self, now: Instant) -> Admit {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let capacity = f64::from(self.per_sec.saturating_mul(BURST_SECONDS));
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * f64::from(self.per_sec)).min(capacity);
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Admit::Yes {
                dropped: std::mem::take(&mut bucket.dropped),
            }
        } else {
            bucket.dropped += 1;
            self.dropped_total.fetch_add(1, Ordering::Relaxed);
            Admit::No
        }
    }

    /// Lines dropped over budget since start-up.
    pub fn dropped(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }

    pub fn per_sec(&self) -> u32 {
        self.per_sec
    }
}

/// Whether `c` could end or rewrite a log line.
fn unsafe_char(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// `text` with every control character written as a visible escape (`\n`, `\u{1b}`).
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A writer that keeps each write on one line: the host's log writer (`cli`). tracing-subscriber
/// formats an event whole and writes it with one `write_all`; every line break inside it is
/// escaped, the final one kept. ANSI colour codes the formatter adds itself are kept as they are
/// (only `\n`, `\r`, vertical tab, form feed and the Unicode separators are escaped here), and
/// ESC in field values is already escaped by tracing-subscriber.
pub struct OneLine<W>(pub W);

impl OneLine<io::Stderr> {
    /// For `fmt().with_writer(OneLine::stderr)`.
    pub fn stderr() -> OneLine<io::Stderr> {
        OneLine(io::stderr())
    }
}

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        let text = String::from_utf8_lossy(body);
        if !text.contains([
            '\n', '\r', '\u{b}', '\u{c}', '\u{85}', '\u{2028}', '\u{2029}',
        ]) {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut out = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}' => {
                    out.push_str(&format!("\\u{{{:x}}}", c as u32))
                }
                c => out.push(c),
            }
        }
        out.push_str(std::str::from_utf8(end).unwrap_or(""));
        self.0.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_budget_spans_calls_and_refills_with_time() {
        let budget = LogBudget::new(10);
        let start = Instant::now();
        let admitted = (0..100)
            .filter(|_| matches!(budget.admit_at(start), Admit::Yes { .. }))
            .count();
        assert_eq!(admitted, 40, "a burst is 4 seconds' worth");
        assert_eq!(budget.admit_at(start), Admit::No);
        assert_eq!(budget.dropped(), 61);
        // Half a second later, 5 more lines; the first says how many were dropped meanwhile.
        let later = start + Duration::from_millis(500);
        assert_eq!(budget.admit_at(later), Admit::Yes { dropped: 61 });
        let more = (0..10)
            .filter(|_| matches!(budget.admit_at(later), Admit::Yes { .. }))
            .count();
        assert_eq!(more, 4);
        // A clock that goes backwards adds nothing.
        assert_eq!(budget.admit_at(start), Admit::No);
        assert_eq!(LogBudget::new(0).admit_at(later), Admit::No);
    }

    #[test]
    fn control_characters_cannot_start_a_line() {
        assert!(matches!(escape_controls("plain text"), Cow::Borrowed(_)));
        let forged = "ok\n2026-01-01T00:00:00Z ERROR forged\r\u{1b}[2K\u{2028}x\u{85}";
        let escaped = escape_controls(forged);
        assert_eq!(
            escaped,
            "ok\\n2026-01-01T00:00:00Z ERROR forged\\r\\u{1b}[2K\\u{2028}x\\u{85}"
        );
        assert!(!escaped.chars().any(unsafe_char));
    }

    #[test]
    fn one_event_is_one_line() {
        let mut out = OneLine(Vec::new());
        out.write_all(b"INFO event=a\nERROR forged\r\n").unwrap();
        out.write_all(b"\x1b[32mINFO\x1b[0m plain\n").unwrap();
        let text = String::from_utf8(out.0).unwrap();
        assert_eq!(
            text,
            "INFO event=a\\nERROR forged\\r\n\u{1b}[32mINFO\u{1b}[0m plain\n"
        );
        assert_eq!(text.lines().count(), 2);
    }
}
