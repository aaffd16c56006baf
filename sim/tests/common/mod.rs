//! Helpers shared by the simulator's integration tests.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use hovercraft_sim::Scenario;

/// A trace sink the test can read back after the run.
#[derive(Clone, Default)]
pub struct SharedBuf(pub Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An unreplicated scenario with the default network and CPU, edited by `json_patch`
/// (a JSON object merged over the base, one level deep per section).
pub fn scenario(patch: serde_json::Value) -> Scenario {
    let mut base = serde_json::json!({
        "name": "test",
        "seed": 1,
        "mode": "unreplicated",
        "nodes": 1,
        "duration_ms": 50,
        "warmup_ms": 5,
        "workload": { "rate_rps": 10000.0 }
    });
    merge(&mut base, patch);
    Scenario::from_json("<test>", &base.to_string()).expect("test scenario is valid")
}

pub fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}
