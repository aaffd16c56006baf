//! The error of a scenario-shaped file (scenario, sweep, or the part the runtime's load
//! generator reads): the file, the field and the reason, on one line. The simulator and the
//! runtime both report with it, so a user sees the same wording from either.

use std::fmt;

#[derive(Debug)]
pub struct ScenarioError {
    pub file: String,
    /// The field's path (`workload.rate_rps`); empty or `.` for the file as a whole.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (file, field, reason) = (
            one_line(&self.file),
            one_line(&self.field),
            one_line(&self.reason),
        );
        if field.is_empty() || field == "." {
            write!(f, "{file}: {reason}")
        } else {
            write!(f, "{file}: field `{field}`: {reason}")
        }
    }
}

impl std::error::Error for ScenarioError {}

/// `s` fit for a one-line error message: runs of whitespace become one space, and any other
/// control character is escaped (`\u{1b}`), so that a field name a user's file spells with
/// a JSON-escaped newline or a terminal escape can neither break the line nor drive the
/// terminal (issue 16: both were echoed raw).
pub fn one_line(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .flat_map(|c| {
            let escaped = c.is_control().then(|| c.escape_default());
            let plain = (!c.is_control()).then_some(c);
            escaped.into_iter().flatten().chain(plain)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_one_line_whatever_the_file_says() {
        let e = ScenarioError {
            file: "s.json".into(),
            field: "wor\nk\u{1b}[31mload".into(),
            reason: "unknown field `wor\nk`,\n  expected one of `a`".into(),
        };
        let text = e.to_string();
        assert!(!text.contains('\n') && !text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("\\u{1b}[31m"), "{text:?}");
        assert_eq!(one_line("a\n\t b"), "a b");
    }
}
