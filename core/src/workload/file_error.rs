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
        if self.field.is_empty() || self.field == "." {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}: field `{}`: {}", self.file, self.field, self.reason)
        }
    }
}

impl std::error::Error for ScenarioError {}
