//! `hovercraft-node --cluster cluster.json --id I`: one replica (or the unreplicated server)
//! of the cluster the file describes, on kernel UDP. Exit codes: 2 bad cluster file or
//! arguments (including an unreadable or group/other-readable key file), 3 the node's `raft.log` or `snapshot` is refused (damaged — the log before its
//! last record —, another cluster's or node's, headerless, or a log and snapshot that do not
//! fit together; the one-line message names the file, field or byte offset and record;
//! repair in runtime-dpdk/src/storage.rs), 1 any other runtime failure
//! (cannot bind, cannot write the log).
//!
//! `hovercraft-node keygen <path>` writes a new 32-byte random cluster key (mode 0600, never
//! over an existing file) for the cluster file's `"auth": {"key_file": ...}`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hovercraft_runtime::cluster::ClusterFile;
use hovercraft_runtime::server::Server;
use hovercraft_runtime::storage::StorageError;

#[derive(Parser)]
#[command(name = "hovercraft-node", about = "A HovercRaft node on kernel UDP")]
struct Args {
    /// The cluster file (JSON; schema in runtime-dpdk/src/cluster.rs and the README).
    #[arg(long)]
    cluster: PathBuf,
    /// This node's id (its index in the file's `nodes`).
    #[arg(long)]
    id: u8,
    /// This node's storage dir was moved away (repair after damage): start empty and neither
    /// vote nor campaign until it has caught up with the leader (a `rejoining` marker in the
    /// storage dir keeps it so across restarts until then).
    #[arg(long)]
    rejoin: bool,
}

/// `hovercraft-node keygen <path>`.
#[derive(Parser)]
#[command(
    name = "hovercraft-node keygen",
    about = "Write a new 32-byte cluster key (mode 0600)"
)]
struct KeygenArgs {
    /// Where to write the key (must not exist yet).
    path: PathBuf,
}

fn main() -> ExitCode {
    // A subcommand checked by hand: the node's own flags stay as they were (required).
    if std::env::args_os().nth(1).is_some_and(|a| a == "keygen") {
        let k = KeygenArgs::parse_from(std::env::args_os().skip(1));
        return match hovercraft_runtime::auth::keygen(&k.path) {
            Ok(()) => {
                println!(
                    "wrote a new cluster key to {} (mode 0600)",
                    k.path.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hovercraft-node keygen: {e}");
                ExitCode::from(1)
            }
        };
    }
    let args = Args::parse();
    let cluster = match ClusterFile::load(&args.cluster) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hovercraft-node: {e}");
            return ExitCode::from(2);
        }
    };
    // Before anything binds: a missing or readable-by-others key is a cluster file problem.
    if let Err(e) = cluster.load_keys() {
        eprintln!("hovercraft-node: {e}");
        return ExitCode::from(2);
    }
    if args.id as usize >= cluster.nodes.len() {
        eprintln!(
            "hovercraft-node: {}: --id {} is not a node of this cluster (ids 0..{})",
            args.cluster.display(),
            args.id,
            cluster.nodes.len()
        );
        return ExitCode::from(2);
    }
    match Server::start_with(cluster, args.id, args.rejoin).and_then(Server::run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hovercraft-node: {e:#}");
            match e.downcast_ref::<StorageError>() {
                Some(StorageError::Replay { .. }) => ExitCode::from(3),
                _ => ExitCode::from(1),
            }
        }
    }
}
