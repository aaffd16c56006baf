//! Topology: hosts and switches as a petgraph graph, compiled into the flat tables the hot
//! path uses (each host's uplink, each switch's ports, unicast routes and multicast port
//! sets). Routes are shortest paths; ties go to the lowest port, so routing is deterministic.
//! Multicast follows the unicast routes to each member, which is loop-free on trees (star).

use petgraph::graph::{NodeIndex, UnGraph};
use petgraph::visit::EdgeRef;

use crate::scenario::{NetworkConfig, TopologyKind};

/// What sits at the far end of a switch port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Host(usize),
    Switch { switch: usize, port: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetNode {
    Host(usize),
    Switch(usize),
}

/// A link's properties (both directions alike).
#[derive(Clone, Copy, Debug)]
pub struct LinkSpec {
    pub bandwidth_gbps: f64,
    pub latency_ns: u64,
}

pub struct SwitchTables {
    pub ports: Vec<(Peer, LinkSpec)>,
    /// `route[h]` = egress port towards host `h`.
    pub route: Vec<usize>,
}

/// The compiled topology.
pub struct Topology {
    pub graph: UnGraph<NetNode, LinkSpec>,
    /// `uplink[h]` = (switch, port on that switch, link) of host `h`'s single NIC.
    pub uplink: Vec<(usize, usize, LinkSpec)>,
    pub switches: Vec<SwitchTables>,
}

impl Topology {
    /// Builds the topology for `hosts` hosts (servers first, then client machines).
    pub fn build(cfg: &NetworkConfig, hosts: usize) -> Topology {
        let link = LinkSpec {
            bandwidth_gbps: cfg.bandwidth_gbps,
            latency_ns: cfg.link_latency_ns,
        };
        let mut graph = UnGraph::new_undirected();
        let host_nodes: Vec<NodeIndex> = (0..hosts)
            .map(|h| graph.add_node(NetNode::Host(h)))
            .collect();
        match cfg.topology {
            TopologyKind::Star => {
                let tor = graph.add_node(NetNode::Switch(0));
                for &h in &host_nodes {
                    graph.add_edge(h, tor, link);
                }
            }
        }
        Self::compile(graph, hosts)
    }

    fn compile(graph: UnGraph<NetNode, LinkSpec>, hosts: usize) -> Topology {
        let switch_nodes: Vec<NodeIndex> = {
            let mut v: Vec<(usize, NodeIndex)> = graph
                .node_indices()
                .filter_map(|n| match graph[n] {
                    NetNode::Switch(s) => Some((s, n)),
                    NetNode::Host(_) => None,
                })
                .collect();
            v.sort();
            v.into_iter().map(|(_, n)| n).collect()
        };
        let host_node = |h: usize| {
            graph
                .node_indices()
                .find(|&n| graph[n] == NetNode::Host(h))
                .expect("every host is in the graph")
        };
        // Ports of a switch: its edges in edge-index order (deterministic).
        let port_edges: Vec<Vec<petgraph::graph::EdgeIndex>> = switch_nodes
            .iter()
            .map(|&s| {
                let mut e: Vec<_> = graph.edges(s).map(|e| e.id()).collect();
                e.sort();
                e
            })
            .collect();
        let other_end = |e: petgraph::graph::EdgeIndex, me: NodeIndex| {
            let (a, b) = graph.edge_endpoints(e).expect("edge exists");
            if a == me {
                b
            } else {
                a
            }
        };
        let mut switches: Vec<SwitchTables> = Vec::new();
        for (s, &sn) in switch_nodes.iter().enumerate() {
            let ports = port_edges[s]
                .iter()
                .map(|&e| {
                    let peer = match graph[other_end(e, sn)] {
                        NetNode::Host(h) => Peer::Host(h),
                        NetNode::Switch(s2) => {
                            let port = port_edges[s2]
                                .iter()
                                .position(|&e2| e2 == e)
                                .expect("edge is a port at both ends");
                            Peer::Switch { switch: s2, port }
                        }
                    };
                    (peer, graph[e])
                })
                .collect();
            switches.push(SwitchTables {
                ports,
                route: vec![usize::MAX; hosts],
            });
        }
        let mut uplink = Vec::with_capacity(hosts);
        for h in 0..hosts {
            let hn = host_node(h);
            let dist = petgraph::algo::dijkstra(&graph, hn, None, |_| 1u32);
            for (s, &sn) in switch_nodes.iter().enumerate() {
                let Some(&d) = dist.get(&sn) else { continue };
                // Egress port = lowest port whose far end is one hop closer to h.
                let port = port_edges[s]
                    .iter()
                    .position(|&e| dist.get(&other_end(e, sn)) == Some(&(d - 1)))
                    .expect("a shortest path has a next hop");
                switches[s].route[h] = port;
            }
            let mut up: Vec<_> = graph.edges(hn).map(|e| e.id()).collect();
            up.sort();
            let e = *up.first().expect("every host has a link");
            let sw_node = other_end(e, hn);
            let NetNode::Switch(s) = graph[sw_node] else {
                panic!("hosts connect to switches only")
            };
            let port = port_edges[s].iter().position(|&x| x == e).expect("port");
            uplink.push((s, port, graph[e]));
        }
        Topology {
            graph,
            uplink,
            switches,
        }
    }

    /// Egress ports of switch `s` for a multicast frame to `members` that came in on
    /// `in_port`, deduplicated and in port order.
    pub fn multicast_ports(&self, s: usize, members: &[usize], in_port: usize) -> Vec<usize> {
        let mut ports: Vec<usize> = members
            .iter()
            .map(|&h| self.switches[s].route[h])
            .filter(|&p| p != in_port && p != usize::MAX)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_routes_every_host_through_its_own_port() {
        let t = Topology::build(&NetworkConfig::default(), 5);
        assert_eq!(t.switches.len(), 1);
        assert_eq!(t.switches[0].ports.len(), 5);
        for h in 0..5 {
            let (s, port, _) = t.uplink[h];
            assert_eq!(s, 0);
            assert_eq!(t.switches[0].route[h], port);
            assert_eq!(t.switches[0].ports[port].0, Peer::Host(h));
        }
        // A multicast from host 0 to {0,1,2} goes out on the ports of 1 and 2 only.
        let in_port = t.uplink[0].1;
        assert_eq!(t.multicast_ports(0, &[0, 1, 2], in_port).len(), 2);
    }
}
