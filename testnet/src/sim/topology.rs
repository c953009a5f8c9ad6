//! The three simulated settings: devices, their speeds and the links
//! between them.
//!
//! Every node has an access link in each direction (its NIC or Wi-Fi).
//! Nodes sit in cells (a LAN); a cell reaches the others through its
//! uplink (one link per direction) to a backbone of ample capacity. Modelled
//! in the spirit of the urban-sensing and industrial-IoT scenarios of the
//! faas-sim / ether edge simulators (Raith et al.; Rausch et al., Skippy).

use shoal_protocol::SpeedClass;

use super::net::{LinkId, MAX_PATH};
use super::rng::Rng;

/// 1 Mb/s in bytes per ms.
const MBIT: f64 = 125.0;
/// 1 GB.
const GB: u64 = 1 << 30;

/// Which setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TopologyKind {
    /// One switched LAN of mixed devices.
    Lan,
    /// Urban sensing cells: Pi-class nodes on 1 Gb/s cell LANs behind
    /// 25 Mb/s uplinks, plus a few cloudlets with fast uplinks.
    Urban,
    /// Industrial IoT premises: Wi-Fi Pis and wired NUCs behind 250-500 Mb/s
    /// uplinks, plus a small cloud region.
    Iiot,
}

impl TopologyKind {
    /// Name as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TopologyKind::Lan => "lan",
            TopologyKind::Urban => "urban",
            TopologyKind::Iiot => "iiot",
        }
    }
}

/// One simulated device.
#[derive(Debug, Clone)]
pub struct Device {
    /// What the node announces (seeds the market's speed prior).
    pub class: SpeedClass,
    /// True compute speed, reference-ms per ms (a Pi 4 is about 1).
    pub speed: f64,
    /// Task slots.
    pub slots: u16,
    /// Memory for tasks, bytes.
    pub memory: u64,
    /// Cell (LAN) it sits in.
    pub cell: u32,
    /// Access link, node to cell.
    pub up: LinkId,
    /// Access link, cell to node.
    pub down: LinkId,
    /// One-way latency of the access link, ms.
    pub latency: f64,
    /// Short label of the device type.
    pub label: &'static str,
}

/// A cell's way out to the backbone.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Uplink (cell to backbone) and downlink; `None` for a single-cell LAN.
    pub link: Option<(LinkId, LinkId)>,
    /// One-way latency to the backbone, ms.
    pub latency: f64,
}

/// Devices, cells and link capacities.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Which setting.
    pub kind: TopologyKind,
    /// The nodes.
    pub nodes: Vec<Device>,
    /// The cells.
    pub cells: Vec<Cell>,
    /// Capacity of every link, bytes per ms.
    pub capacity: Vec<f64>,
    /// Whether a link is a cell uplink/downlink (for the "bytes over
    /// uplinks" count).
    pub is_uplink: Vec<bool>,
}

struct Builder {
    t: Topology,
}

impl Builder {
    fn link(&mut self, cap: f64, uplink: bool) -> LinkId {
        self.t.capacity.push(cap);
        self.t.is_uplink.push(uplink);
        (self.t.capacity.len() - 1) as LinkId
    }

    fn cell(&mut self, uplink: Option<f64>, latency: f64) -> u32 {
        let link = uplink.map(|c| (self.link(c, true), self.link(c, true)));
        self.t.cells.push(Cell { link, latency });
        (self.t.cells.len() - 1) as u32
    }

    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        cell: u32,
        class: SpeedClass,
        speed: f64,
        slots: u16,
        memory: u64,
        nic: f64,
        latency: f64,
        label: &'static str,
    ) {
        let up = self.link(nic, false);
        let down = self.link(nic, false);
        self.t.nodes.push(Device {
            class,
            speed,
            slots,
            memory,
            cell,
            up,
            down,
            latency,
            label,
        });
    }

    fn pi4(&mut self, cell: u32, r: &mut Rng, nic: f64, lat: f64) {
        let s = r.range(0.8, 1.2);
        self.node(cell, SpeedClass::Small, s, 2, 3 * GB, nic, lat, "pi4");
    }

    fn pi_zero(&mut self, cell: u32, r: &mut Rng, nic: f64, lat: f64) {
        let s = r.range(0.2, 0.35);
        self.node(
            cell,
            SpeedClass::Embedded,
            s,
            1,
            GB / 2,
            nic,
            lat,
            "pi-zero",
        );
    }

    fn nuc(&mut self, cell: u32, r: &mut Rng, nic: f64, lat: f64) {
        let s = r.range(3.0, 5.0);
        self.node(cell, SpeedClass::Desktop, s, 4, 12 * GB, nic, lat, "nuc");
    }

    fn server(&mut self, cell: u32, r: &mut Rng, nic: f64, lat: f64, label: &'static str) {
        let s = r.range(6.0, 10.0);
        self.node(cell, SpeedClass::Server, s, 8, 48 * GB, nic, lat, label);
    }
}

impl Topology {
    /// Builds `n` nodes (at least 2) of the setting `kind`.
    pub fn build(kind: TopologyKind, n: usize, r: &mut Rng) -> Topology {
        let n = n.max(2);
        let mut b = Builder {
            t: Topology {
                kind,
                nodes: Vec::with_capacity(n),
                cells: Vec::new(),
                capacity: Vec::new(),
                is_uplink: Vec::new(),
            },
        };
        match kind {
            TopologyKind::Lan => {
                // One switch; Pi 4s and NUCs on gigabit, Pi Zeros on
                // 100 Mb/s, a few servers on 10 Gb/s.
                let c = b.cell(None, 0.0);
                for i in 0..n {
                    match i % 20 {
                        0 => b.server(c, r, 10_000.0 * MBIT, 0.05, "server"),
                        1..=5 => b.nuc(c, r, 1000.0 * MBIT, 0.1),
                        6..=9 => b.pi_zero(c, r, 100.0 * MBIT, 0.2),
                        _ => b.pi4(c, r, 1000.0 * MBIT, 0.1),
                    }
                }
            }
            TopologyKind::Urban => {
                // 2 % cloudlets (at least 2), each in its own cell with a
                // gigabit uplink; the rest in sensing cells of 10 Pi-class
                // nodes on a gigabit LAN behind a 25 Mb/s uplink.
                let cloudlets = (n / 50).max(2).min(n - 1);
                for _ in 0..cloudlets {
                    let c = b.cell(Some(1000.0 * MBIT), 2.0);
                    b.server(c, r, 10_000.0 * MBIT, 0.05, "cloudlet");
                }
                let rest = n - cloudlets;
                let cells = rest.div_ceil(10);
                let ids: Vec<u32> = (0..cells)
                    .map(|_| b.cell(Some(25.0 * MBIT), 10.0))
                    .collect();
                for i in 0..rest {
                    let c = ids[i % cells];
                    if i % 10 < 7 {
                        b.pi4(c, r, 1000.0 * MBIT, 0.2);
                    } else {
                        b.pi_zero(c, r, 100.0 * MBIT, 0.3);
                    }
                }
            }
            TopologyKind::Iiot => {
                // Premises of 20 nodes: Pis on Wi-Fi (40-80 Mb/s, 2 ms),
                // NUCs wired; uplinks of 250-500 Mb/s. A small cloud region
                // (1 % of nodes, at least 1) 20 ms away.
                let cloud = (n / 100).max(1).min(n - 1);
                let cc = b.cell(Some(10_000.0 * MBIT), 20.0);
                for _ in 0..cloud {
                    b.server(cc, r, 10_000.0 * MBIT, 0.05, "cloud-vm");
                }
                let rest = n - cloud;
                let premises = rest.div_ceil(20);
                let ids: Vec<u32> = (0..premises)
                    .map(|_| {
                        let up = r.range(250.0, 500.0) * MBIT;
                        b.cell(Some(up), 5.0)
                    })
                    .collect();
                for i in 0..rest {
                    let c = ids[i % premises];
                    if i % 20 < 14 {
                        let wifi = r.range(40.0, 80.0) * MBIT;
                        b.pi4(c, r, wifi, 2.0);
                    } else {
                        b.nuc(c, r, 1000.0 * MBIT, 0.1);
                    }
                }
            }
        }
        b.t
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// No nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Links from `a` to `b` (`a != b`); returns how many were written.
    pub fn path(&self, a: usize, b: usize, out: &mut [LinkId; MAX_PATH]) -> usize {
        let (na, nb) = (&self.nodes[a], &self.nodes[b]);
        out[0] = na.up;
        let mut k = 1;
        if na.cell != nb.cell {
            if let Some((up, _)) = self.cells[na.cell as usize].link {
                out[k] = up;
                k += 1;
            }
            if let Some((_, down)) = self.cells[nb.cell as usize].link {
                out[k] = down;
                k += 1;
            }
        }
        out[k] = nb.down;
        k + 1
    }

    /// One-way latency from `a` to `b`, ms.
    pub fn latency(&self, a: usize, b: usize) -> f64 {
        if a == b {
            return 0.0;
        }
        let (na, nb) = (&self.nodes[a], &self.nodes[b]);
        let mut l = na.latency + nb.latency;
        if na.cell != nb.cell {
            l += self.cells[na.cell as usize].latency + self.cells[nb.cell as usize].latency;
        }
        l
    }

    /// Whether traffic from `a` to `b` crosses a cell uplink.
    pub fn crosses_uplink(&self, a: usize, b: usize) -> bool {
        let (ca, cb) = (self.nodes[a].cell, self.nodes[b].cell);
        ca != cb
            && (self.cells[ca as usize].link.is_some() || self.cells[cb as usize].link.is_some())
    }

    /// Capacity of the narrowest link from `a` to `b`, bytes per ms.
    pub fn path_capacity(&self, a: usize, b: usize) -> f64 {
        let mut p = [0; MAX_PATH];
        let k = self.path(a, b, &mut p);
        p[..k]
            .iter()
            .map(|l| self.capacity[*l as usize])
            .fold(f64::INFINITY, f64::min)
    }

    /// Sum of speed x slots: reference-ms of work per ms.
    pub fn capacity_total(&self) -> f64 {
        self.nodes
            .iter()
            .map(|d| d.speed * f64::from(d.slots))
            .sum()
    }

    /// Nodes per cell.
    pub fn members(&self) -> Vec<Vec<u32>> {
        let mut m = vec![Vec::new(); self.cells.len()];
        for (i, d) in self.nodes.iter().enumerate() {
            m[d.cell as usize].push(i as u32);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urban_cells_sit_behind_slow_uplinks() {
        let t = Topology::build(TopologyKind::Urban, 50, &mut Rng::new(1));
        assert_eq!(t.len(), 50);
        let m = t.members();
        let cell = m
            .iter()
            .find(|c| c.len() >= 2 && t.nodes[c[0] as usize].label != "cloudlet");
        let cell = cell.unwrap();
        let (a, b) = (cell[0] as usize, cell[1] as usize);
        assert!(!t.crosses_uplink(a, b));
        let other = (0..50)
            .find(|i| t.nodes[*i].cell != t.nodes[a].cell)
            .unwrap();
        assert!(t.crosses_uplink(a, other));
        assert!(t.path_capacity(a, other) <= 25.0 * MBIT);
        assert!(t.latency(a, other) > t.latency(a, b));
    }
}
