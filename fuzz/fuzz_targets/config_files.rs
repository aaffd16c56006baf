//! Config files from arbitrary strings: the simulator's scenario JSON
//! (`Scenario::from_json`) and the runtime's cluster file (`ClusterFile::from_json`). Never
//! panic, and every error is one line.
#![no_main]

use hovercraft_runtime::cluster::ClusterFile;
use hovercraft_sim::scenario::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(e) = Scenario::from_json("fuzz.json", text) {
        let s = e.to_string();
        assert!(!s.contains('\n'), "a multi-line scenario error: {s:?}");
    }
    match ClusterFile::from_json("cluster.json", text) {
        Err(e) => {
            let s = e.to_string();
            assert!(!s.contains('\n'), "a multi-line cluster error: {s:?}");
        }
        Ok(c) => {
            // What validates, the runtime builds nodes from: a node builds on it.
            for id in 0..c.nodes.len() {
                if let Err(e) = hovercraft_core::Node::new(c.node_config(id as u8)) {
                    panic!("a cluster file that validates builds no node {id}: {e}");
                }
            }
            let _ = (c.peers(), c.group());
        }
    }
});
