//! Flow-level network: every transfer is a flow over a path of links, and
//! the flows share link capacities max-min fairly.
//!
//! Rates come from progressive filling (Bertsekas & Gallager, *Data
//! Networks*, 6.5.2): raise every flow's rate together; when a link fills,
//! freeze the flows crossing it at their current rate; repeat with the rest.
//! Rates only change when a flow starts or ends, and then only for the flows
//! connected to it through shared links, so each change recomputes that
//! connected component and nothing else. Between changes every flow moves
//! at a constant rate; the caller schedules each flow's completion from
//! [`Net::take_changed`] and discards completions whose version is stale.
//!
//! A [`Net::deferred`] network recomputes only when told to
//! ([`Net::flush`]), every few milliseconds in the simulator: the changed
//! components are then recomputed once for all the starts and stops since
//! the last flush (docs/decisions/005-sim-rate-interval.md).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Index of a link.
pub type LinkId = u32;
/// Index of a flow (reused after the flow ends; pair it with the version).
pub type FlowId = u32;

/// Longest path a flow takes (access up, uplink up, uplink down, access down).
pub const MAX_PATH: usize = 4;

#[derive(Debug, Clone)]
struct Flow {
    path: [LinkId; MAX_PATH],
    len: u8,
    remaining: f64,
    rate: f64,
    updated: f64,
    version: u32,
}

impl Flow {
    fn links(&self) -> &[LinkId] {
        &self.path[..usize::from(self.len)]
    }
}

/// A completion to (re)schedule: `flow` at `version` ends at `at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Completion {
    /// The flow.
    pub flow: FlowId,
    /// Its version; a completion event with another version is stale.
    pub version: u32,
    /// Time it ends, ms.
    pub at: f64,
}

#[derive(Debug, Clone, PartialEq)]
struct Share(f64, LinkId, u32);
impl Eq for Share {}
impl PartialOrd for Share {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Share {
    // Min-heap on the share, then link id for determinism.
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.total_cmp(&self.0).then(o.1.cmp(&self.1))
    }
}

/// Links with capacities (bytes per ms) and the flows crossing them.
#[derive(Debug, Clone)]
pub struct Net {
    cap: Vec<f64>,
    on_link: Vec<Vec<FlowId>>,
    flows: Vec<Option<Flow>>,
    free: Vec<FlowId>,
    versions: Vec<u32>,
    changed: Vec<Completion>,
    // Scratch space for recomputations, kept to avoid allocation.
    link_mark: Vec<u64>,
    flow_mark: Vec<u64>,
    stamp: u64,
    rem: Vec<f64>,
    cnt: Vec<u32>,
    gen: Vec<u32>,
    key: Vec<f64>,
    // Per flow: the smallest capacity on its path, the link that has it,
    // and the smallest capacity of the other links (infinite if none).
    bound: Vec<(f64, LinkId, f64)>,
    comp_links: Vec<LinkId>,
    comp_flows: Vec<FlowId>,
    stack: Vec<LinkId>,
    new_rates: Vec<(FlowId, f64)>,
    heap: BinaryHeap<Share>,
    active: usize,
    // Deferred mode (see [`Net::deferred`]): the links whose flows changed
    // since the last [`Net::flush`], and the sum of the current rates on
    // every link (what a starting flow may take before the next flush).
    deferred: bool,
    dirty: Vec<LinkId>,
    dirty_mark: Vec<bool>,
    used: Vec<f64>,
}

impl Net {
    /// A network of links with these capacities, bytes per ms (> 0).
    pub fn new(capacities: Vec<f64>) -> Net {
        let n = capacities.len();
        Net {
            cap: capacities.into_iter().map(|c| c.max(1e-9)).collect(),
            on_link: vec![Vec::new(); n],
            flows: Vec::new(),
            free: Vec::new(),
            versions: Vec::new(),
            changed: Vec::new(),
            link_mark: vec![0; n],
            flow_mark: Vec::new(),
            stamp: 0,
            rem: vec![0.0; n],
            cnt: vec![0; n],
            gen: vec![0; n],
            key: vec![0.0; n],
            bound: Vec::new(),
            comp_links: Vec::new(),
            comp_flows: Vec::new(),
            stack: Vec::new(),
            new_rates: Vec::new(),
            heap: BinaryHeap::new(),
            active: 0,
            deferred: false,
            dirty: Vec::new(),
            dirty_mark: vec![false; n],
            used: vec![0.0; n],
        }
    }

    /// A network whose rates are recomputed only on [`Net::flush`], not at
    /// every flow start and stop.
    ///
    /// Between flushes a starting flow takes the capacity its path has to
    /// spare (none, on a saturated link), and the capacity a stopped flow
    /// leaves is spare; a flush sets every affected flow to its max-min
    /// fair rate. No link ever carries more than its capacity. Flushing
    /// every few tens of milliseconds models the time congestion control
    /// takes to converge to a new fair share, and saves the recomputation
    /// of a large component at every change.
    pub fn deferred(capacities: Vec<f64>) -> Net {
        let mut n = Net::new(capacities);
        n.deferred = true;
        n
    }

    /// Whether some rates wait for a [`Net::flush`].
    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Recomputes the rates of every flow connected to a link whose flows
    /// changed since the last flush.
    pub fn flush(&mut self, now: f64) {
        if self.dirty.is_empty() {
            return;
        }
        let seeds = std::mem::take(&mut self.dirty);
        for l in &seeds {
            self.dirty_mark[*l as usize] = false;
        }
        self.recompute(now, &seeds);
        let mut seeds = seeds;
        seeds.clear();
        self.dirty = seeds;
    }

    fn mark_dirty(&mut self, path: &[LinkId]) {
        for l in path {
            if !self.dirty_mark[*l as usize] {
                self.dirty_mark[*l as usize] = true;
                self.dirty.push(*l);
            }
        }
    }

    /// Flows in progress.
    pub fn active(&self) -> usize {
        self.active
    }

    /// Flows currently crossing `link`.
    pub fn load(&self, link: LinkId) -> usize {
        self.on_link.get(link as usize).map_or(0, Vec::len)
    }

    /// Capacity of `link`, bytes per ms.
    pub fn capacity(&self, link: LinkId) -> f64 {
        self.cap.get(link as usize).copied().unwrap_or(0.0)
    }

    /// Current rate of `flow`, bytes per ms.
    pub fn rate(&self, flow: FlowId) -> Option<f64> {
        self.flows.get(flow as usize)?.as_ref().map(|f| f.rate)
    }

    /// Whether `flow` at `version` is still the live flow of that id.
    pub fn is_current(&self, flow: FlowId, version: u32) -> bool {
        self.flows
            .get(flow as usize)
            .is_some_and(|f| f.as_ref().is_some_and(|f| f.version == version))
    }

    /// Completions whose time changed since the last call.
    pub fn take_changed(&mut self) -> Vec<Completion> {
        std::mem::take(&mut self.changed)
    }

    /// Moves the completions whose time changed since the last call into
    /// `out` (which keeps its allocation).
    pub fn take_changed_into(&mut self, out: &mut Vec<Completion>) {
        out.append(&mut self.changed);
    }

    /// Starts a flow of `bytes` over `path` (1 to [`MAX_PATH`] links).
    pub fn start(&mut self, now: f64, path: &[LinkId], bytes: f64) -> FlowId {
        let len = path.len().clamp(1, MAX_PATH);
        let mut p = [0; MAX_PATH];
        p[..len].copy_from_slice(&path[..len]);
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.flows.push(None);
                self.versions.push(0);
                self.flow_mark.push(0);
                self.bound.push((f64::INFINITY, 0, f64::INFINITY));
                (self.flows.len() - 1) as FlowId
            }
        };
        let v = self.versions[id as usize].wrapping_add(1);
        self.versions[id as usize] = v;
        self.flows[id as usize] = Some(Flow {
            path: p,
            len: len as u8,
            remaining: bytes.max(0.0),
            rate: 0.0,
            updated: now,
            version: v,
        });
        let mut b = (f64::INFINITY, p[0], f64::INFINITY);
        for l in &p[..len] {
            self.on_link[*l as usize].push(id);
            let c = self.cap[*l as usize];
            if c < b.0 {
                b = (c, *l, b.0);
            } else if c < b.2 {
                b.2 = c;
            }
        }
        self.bound[id as usize] = b;
        self.active += 1;
        if self.deferred {
            // What the path has to spare until the next flush.
            let spare = p[..len]
                .iter()
                .map(|l| self.cap[*l as usize] - self.used[*l as usize])
                .fold(f64::INFINITY, f64::min);
            if spare > 1e-9 {
                for l in &p[..len] {
                    self.used[*l as usize] += spare;
                }
                if let Some(fl) = self.flows[id as usize].as_mut() {
                    fl.rate = spare;
                    self.changed.push(Completion {
                        flow: id,
                        version: v,
                        at: now + fl.remaining / spare,
                    });
                }
            }
            self.mark_dirty(&p[..len]);
        } else {
            self.recompute(now, &p[..len]);
        }
        id
    }

    /// Ends `flow` (finished or aborted); returns the bytes it had left.
    pub fn stop(&mut self, now: f64, flow: FlowId) -> Option<f64> {
        let f = self.flows.get_mut(flow as usize)?.take()?;
        let left = (f.remaining - f.rate * (now - f.updated)).max(0.0);
        for l in f.links() {
            let v = &mut self.on_link[*l as usize];
            if let Some(i) = v.iter().position(|x| *x == flow) {
                v.swap_remove(i);
            }
        }
        self.free.push(flow);
        self.active -= 1;
        if self.deferred {
            for l in f.links() {
                let u = &mut self.used[*l as usize];
                *u = (*u - f.rate).max(0.0);
            }
            self.mark_dirty(f.links());
        } else {
            self.recompute(now, f.links());
        }
        Some(left)
    }

    /// Recomputes the rates of every flow connected to `seeds`.
    fn recompute(&mut self, now: f64, seeds: &[LinkId]) {
        self.stamp += 1;
        let stamp = self.stamp;
        // The scratch vectors live in `self` so that a recomputation (one
        // per flow start and stop) does not allocate.
        let mut links = std::mem::take(&mut self.comp_links);
        let mut flows = std::mem::take(&mut self.comp_flows);
        let mut stack = std::mem::take(&mut self.stack);
        let mut new_rates = std::mem::take(&mut self.new_rates);
        let mut heap = std::mem::take(&mut self.heap);
        links.clear();
        flows.clear();
        stack.clear();
        new_rates.clear();
        heap.clear();
        for l in seeds {
            if self.link_mark[*l as usize] != stamp {
                self.link_mark[*l as usize] = stamp;
                stack.push(*l);
            }
        }
        while let Some(l) = stack.pop() {
            links.push(l);
            for f in &self.on_link[l as usize] {
                if self.flow_mark[*f as usize] == stamp {
                    continue;
                }
                self.flow_mark[*f as usize] = stamp;
                flows.push(*f);
                if let Some(fl) = &self.flows[*f as usize] {
                    for l2 in fl.links() {
                        if self.link_mark[*l2 as usize] != stamp {
                            self.link_mark[*l2 as usize] = stamp;
                            stack.push(*l2);
                        }
                    }
                }
            }
        }
        // Bring every affected flow up to `now` at its old rate.
        for f in &flows {
            if let Some(fl) = self.flows[*f as usize].as_mut() {
                fl.remaining = (fl.remaining - fl.rate * (now - fl.updated)).max(0.0);
                fl.updated = now;
            }
        }
        // Progressive filling with a lazy min-heap of per-link fair shares.
        //
        // Freezing a flow at the current minimum share s never lowers the
        // share of another link j it crosses: (rem - s) / (cnt - 1) >=
        // rem / cnt whenever s <= rem / cnt. So a link's entry need not be
        // replaced each time one of its flows freezes (that was one heap
        // push per flow and link, the bulk of the work in a big
        // component): `key[j]` is the share of j's one valid entry, which
        // is at most its current share. A popped entry whose share is out
        // of date goes back with the current one; an update that does
        // lower a share (rounding) is pushed at once. The popped entry
        // whose key is current is therefore the minimum (share, link) over
        // all links, exactly as with eager updates, and the rates come out
        // bit for bit the same.
        //
        // A link that cannot fill never freezes anything, and in a big
        // component most links are such (a fast access link whose few
        // flows all cross a slow uplink), so they stay out of the heap. A
        // flow's rate is the share of the link that freezes it, at most
        // that link's capacity: if the flows of link j could not fill j
        // even each at the smallest capacity on the rest of its path, j
        // is never the link with the smallest share while it still has
        // unfrozen flows (at that moment it would fill). The margin
        // covers rounding. Such a link gets key -inf, so it is never
        // pushed; its `rem` and `cnt` are still kept and read by nobody.
        for l in &links {
            let i = *l as usize;
            self.rem[i] = self.cap[i];
            self.cnt[i] = self.on_link[i].len() as u32;
            self.gen[i] = 0;
            if self.cnt[i] == 0 {
                continue;
            }
            let mut most = 0.0;
            for f in &self.on_link[i] {
                let (m1, at, m2) = self.bound[*f as usize];
                most += if at == *l { m2 } else { m1 };
            }
            if most < self.cap[i] * (1.0 - 1e-6) {
                self.key[i] = f64::NEG_INFINITY;
                continue;
            }
            let s = self.rem[i] / f64::from(self.cnt[i]);
            self.key[i] = s;
            heap.push(Share(s, *l, 0));
        }
        let frozen = stamp.wrapping_add(1 << 63);
        while let Some(Share(share, l, g)) = heap.pop() {
            let i = l as usize;
            if g != self.gen[i] || self.cnt[i] == 0 {
                continue;
            }
            let cur = self.rem[i] / f64::from(self.cnt[i]);
            if cur.total_cmp(&share).is_ne() {
                self.gen[i] += 1;
                self.key[i] = cur;
                heap.push(Share(cur, l, self.gen[i]));
                continue;
            }
            for k in 0..self.on_link[i].len() {
                let f = self.on_link[i][k];
                if self.flow_mark[f as usize] == frozen {
                    continue;
                }
                self.flow_mark[f as usize] = frozen;
                new_rates.push((f, share));
                if let Some(fl) = &self.flows[f as usize] {
                    for l2 in fl.links() {
                        let j = *l2 as usize;
                        if j == i {
                            continue;
                        }
                        self.rem[j] = (self.rem[j] - share).max(0.0);
                        self.cnt[j] -= 1;
                        if self.cnt[j] > 0 {
                            let s = self.rem[j] / f64::from(self.cnt[j]);
                            if s.total_cmp(&self.key[j]).is_lt() {
                                self.gen[j] += 1;
                                self.key[j] = s;
                                heap.push(Share(s, *l2, self.gen[j]));
                            }
                        }
                    }
                }
            }
            self.cnt[i] = 0;
        }
        if self.deferred {
            // The component's links carry exactly its flows: their load is
            // the sum of the new rates.
            for l in &links {
                self.used[*l as usize] = 0.0;
            }
            for (f, rate) in &new_rates {
                if let Some(fl) = &self.flows[*f as usize] {
                    for l in fl.links() {
                        self.used[*l as usize] += rate.max(1e-9);
                    }
                }
            }
        }
        for (f, rate) in new_rates.drain(..) {
            let Some(fl) = self.flows[f as usize].as_mut() else {
                continue;
            };
            let rate = rate.max(1e-9);
            if (fl.rate - rate).abs() <= 1e-12 * rate {
                continue;
            }
            fl.rate = rate;
            fl.version = fl.version.wrapping_add(1);
            self.versions[f as usize] = fl.version;
            self.changed.push(Completion {
                flow: f,
                version: fl.version,
                at: now + fl.remaining / rate,
            });
        }
        self.comp_links = links;
        self.comp_flows = flows;
        self.stack = stack;
        self.new_rates = new_rates;
        self.heap = heap;
    }
}

/// The pending completion of each flow, earliest first: an indexed binary
/// heap keyed by flow id, so that a rescheduled completion replaces the old
/// one in place.
///
/// Every recomputation reschedules the completion of every flow whose rate
/// changed, thousands of them when many flows share a saturated uplink. As
/// events in the simulator's main heap, the superseded completions stayed
/// there until their time came and grew it to millions of entries; here a
/// flow has at most one entry. Entries carry the sequence number they would
/// have had as events, so merging this queue with the main heap on
/// (time, sequence) gives the same order of events.
#[derive(Debug, Clone, Default)]
pub struct CompletionQueue {
    heap: Vec<Due>,
    // Position of each flow's entry in `heap`, plus one (0: none).
    pos: Vec<u32>,
}

/// A scheduled completion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Due {
    /// Time, ms.
    pub at: f64,
    /// Sequence number (tie-break on equal times).
    pub seq: u64,
    /// The flow.
    pub flow: FlowId,
    /// The flow's version when it was scheduled.
    pub version: u32,
}

impl Due {
    fn before(&self, o: &Due) -> bool {
        self.at.total_cmp(&o.at).then(self.seq.cmp(&o.seq)) == Ordering::Less
    }
}

impl CompletionQueue {
    /// Pending completions.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// No completion pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The earliest completion.
    pub fn peek(&self) -> Option<&Due> {
        self.heap.first()
    }

    /// Schedules `d`, replacing the pending completion of `d.flow` if any.
    pub fn set(&mut self, d: Due) {
        let f = d.flow as usize;
        if self.pos.len() <= f {
            self.pos.resize(f + 1, 0);
        }
        match self.pos[f] {
            0 => {
                self.heap.push(d);
                let i = self.heap.len() - 1;
                self.pos[f] = i as u32 + 1;
                self.up(i);
            }
            p => {
                let i = p as usize - 1;
                self.heap[i] = d;
                self.fix(i);
            }
        }
    }

    /// Drops the pending completion of `flow`, if any.
    pub fn remove(&mut self, flow: FlowId) {
        let Some(p) = self.pos.get(flow as usize).copied() else {
            return;
        };
        if p == 0 {
            return;
        }
        self.pos[flow as usize] = 0;
        let i = p as usize - 1;
        let last = self.heap.len() - 1;
        if i != last {
            self.heap.swap(i, last);
            self.heap.pop();
            self.pos[self.heap[i].flow as usize] = i as u32 + 1;
            self.fix(i);
        } else {
            self.heap.pop();
        }
    }

    /// Takes the earliest completion.
    pub fn pop(&mut self) -> Option<Due> {
        let d = *self.heap.first()?;
        self.remove(d.flow);
        Some(d)
    }

    fn fix(&mut self, i: usize) {
        if i > 0 && self.heap[i].before(&self.heap[(i - 1) / 2]) {
            self.up(i);
        } else {
            self.down(i);
        }
    }

    fn place(&mut self, i: usize) {
        self.pos[self.heap[i].flow as usize] = i as u32 + 1;
    }

    fn up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.heap[i].before(&self.heap[parent]) {
                break;
            }
            self.heap.swap(i, parent);
            self.place(i);
            i = parent;
        }
        self.place(i);
    }

    fn down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (a, b) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if a < n && self.heap[a].before(&self.heap[m]) {
                m = a;
            }
            if b < n && self.heap[b].before(&self.heap[m]) {
                m = b;
            }
            if m == i {
                break;
            }
            self.heap.swap(i, m);
            self.place(i);
            i = m;
        }
        self.place(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(n: &Net, ids: &[FlowId]) -> Vec<f64> {
        ids.iter().map(|f| n.rate(*f).unwrap()).collect()
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-9, "{a:?} != {b:?}");
        }
    }

    #[test]
    fn one_link_is_shared_equally() {
        let mut n = Net::new(vec![12.0]);
        let a = n.start(0.0, &[0], 100.0);
        close(&rates(&n, &[a]), &[12.0]);
        let b = n.start(0.0, &[0], 100.0);
        let c = n.start(0.0, &[0], 100.0);
        close(&rates(&n, &[a, b, c]), &[4.0, 4.0, 4.0]);
        n.stop(1.0, c);
        close(&rates(&n, &[a, b]), &[6.0, 6.0]);
    }

    #[test]
    fn textbook_parking_lot() {
        // Links 0 and 1 of capacity 10; flow a crosses both, b only link 0,
        // c only link 1, d only link 1. Link 1 is the bottleneck with three
        // flows (10/3 each); b takes what a leaves on link 0.
        let mut n = Net::new(vec![10.0, 10.0]);
        let a = n.start(0.0, &[0, 1], 1e9);
        let b = n.start(0.0, &[0], 1e9);
        let c = n.start(0.0, &[1], 1e9);
        let d = n.start(0.0, &[1], 1e9);
        let third = 10.0 / 3.0;
        close(
            &rates(&n, &[a, b, c, d]),
            &[third, 10.0 - third, third, third],
        );
    }

    #[test]
    fn slow_uplink_frees_capacity_for_local_flows() {
        // A 1 Gb/s cell LAN (125 kB/ms) behind a 25 Mb/s uplink (3.125 kB/ms).
        // Two flows leave the cell through the uplink, one stays inside: the
        // uplink splits evenly, and the local flow gets the rest of the LAN.
        let mut n = Net::new(vec![125.0, 3.125]);
        let x = n.start(0.0, &[0, 1], 1e9);
        let y = n.start(0.0, &[0, 1], 1e9);
        let z = n.start(0.0, &[0], 1e9);
        close(&rates(&n, &[x, y, z]), &[1.5625, 1.5625, 125.0 - 3.125]);
    }

    #[test]
    fn completions_follow_rate_changes_and_stale_versions_are_detected() {
        let mut n = Net::new(vec![10.0]);
        let a = n.start(0.0, &[0], 100.0);
        let first = n.take_changed();
        assert_eq!(first.len(), 1);
        assert!((first[0].at - 10.0).abs() < 1e-9);
        // At t=5, a has 50 bytes left; b halves its rate: ends at t=15.
        let b = n.start(5.0, &[0], 10.0);
        let ch = n.take_changed();
        let ca = ch.iter().find(|c| c.flow == a).unwrap();
        assert!((ca.at - 15.0).abs() < 1e-9, "{ca:?}");
        assert!(!n.is_current(a, first[0].version));
        assert!(n.is_current(a, ca.version));
        let cb = ch.iter().find(|c| c.flow == b).unwrap();
        assert!((cb.at - 7.0).abs() < 1e-9);
        // b ends at 7; a has 40 left at full rate: ends at 11.
        assert!(n.stop(7.0, b).unwrap() < 1e-9);
        let ch = n.take_changed();
        assert!((ch[0].at - 11.0).abs() < 1e-9);
        assert_eq!(n.active(), 1);
    }

    #[test]
    fn unconnected_flows_are_left_alone() {
        let mut n = Net::new(vec![10.0, 10.0]);
        let _a = n.start(0.0, &[0], 100.0);
        n.take_changed();
        let _b = n.start(1.0, &[1], 100.0);
        // Only b's completion is (re)scheduled.
        assert_eq!(n.take_changed().len(), 1);
    }

    /// Sum of the current rates on each link.
    fn loads(n: &Net, ids: &[FlowId], links: usize) -> Vec<f64> {
        let mut out = vec![0.0; links];
        for f in ids {
            if let Some(fl) = n.flows[*f as usize].as_ref() {
                for l in fl.links() {
                    out[*l as usize] += fl.rate;
                }
            }
        }
        out
    }

    #[test]
    fn deferred_rates_stay_within_capacity_and_match_exact_ones_after_a_flush() {
        let caps = vec![10.0, 10.0, 4.0];
        let paths: [&[LinkId]; 5] = [&[0, 1], &[0], &[1], &[1, 2], &[2]];
        let mut exact = Net::new(caps.clone());
        let mut lazy = Net::deferred(caps.clone());
        let mut ids = Vec::new();
        for (k, p) in paths.iter().enumerate() {
            let t = k as f64;
            exact.start(t, p, 1e9);
            ids.push(lazy.start(t, p, 1e9));
            // Before a flush a new flow only takes what is spare.
            for (l, load) in loads(&lazy, &ids, caps.len()).iter().enumerate() {
                assert!(*load <= caps[l] + 1e-9, "link {l} carries {load}");
            }
            assert!(lazy.is_dirty());
        }
        lazy.flush(5.0);
        assert!(!lazy.is_dirty());
        close(&rates(&lazy, &ids), &rates(&exact, &ids));
        // A stopped flow leaves spare capacity that the next flow takes at
        // once; the flush then shares it out fairly again.
        exact.stop(6.0, ids[1]);
        lazy.stop(6.0, ids[1]);
        let late = lazy.start(6.0, &[0], 1e9);
        let late_exact = exact.start(6.0, &[0], 1e9);
        assert!(lazy.rate(late).unwrap() > 0.0);
        let live = [ids[0], ids[2], ids[3], ids[4], late];
        for (l, load) in loads(&lazy, &live, caps.len()).iter().enumerate() {
            assert!(*load <= caps[l] + 1e-9, "link {l} carries {load}");
        }
        lazy.flush(6.0);
        let live_exact = [ids[0], ids[2], ids[3], ids[4], late_exact];
        close(&rates(&lazy, &live), &rates(&exact, &live_exact));
    }

    #[test]
    fn deferred_flow_with_nothing_spare_waits_for_the_flush_and_keeps_its_bytes() {
        let mut n = Net::deferred(vec![10.0]);
        let a = n.start(0.0, &[0], 100.0);
        assert_eq!(
            n.take_changed().len(),
            1,
            "the first flow takes the idle link"
        );
        let b = n.start(0.0, &[0], 100.0);
        assert!(
            n.take_changed().is_empty(),
            "nothing spare: no completion yet"
        );
        assert_eq!(n.rate(b), Some(0.0));
        // Half a unit later the flush splits the link; a has moved 5 bytes.
        n.flush(0.5);
        let ch = n.take_changed();
        let ca = ch.iter().find(|c| c.flow == a).unwrap();
        let cb = ch.iter().find(|c| c.flow == b).unwrap();
        assert!((ca.at - (0.5 + 95.0 / 5.0)).abs() < 1e-9, "{ca:?}");
        assert!((cb.at - (0.5 + 100.0 / 5.0)).abs() < 1e-9, "{cb:?}");
    }

    #[test]
    fn completion_queue_keeps_one_entry_per_flow_in_time_then_seq_order() {
        let mut q = CompletionQueue::default();
        let d = |at: f64, seq: u64, flow: FlowId| Due {
            at,
            seq,
            flow,
            version: 0,
        };
        q.set(d(5.0, 1, 0));
        q.set(d(3.0, 2, 1));
        q.set(d(3.0, 3, 2));
        q.set(d(9.0, 4, 3));
        // Rescheduling replaces: flow 0 moves later, flow 3 earlier.
        q.set(d(7.0, 5, 0));
        q.set(d(1.0, 6, 3));
        q.remove(2);
        q.remove(2);
        assert_eq!(q.len(), 3);
        let order: Vec<FlowId> = std::iter::from_fn(|| q.pop()).map(|x| x.flow).collect();
        assert_eq!(order, vec![3, 1, 0]);
        assert!(q.is_empty());
        // Equal times go by sequence number.
        for (i, f) in [4u32, 2, 7, 1].iter().enumerate() {
            q.set(d(2.0, 10 - i as u64, *f));
        }
        let order: Vec<FlowId> = std::iter::from_fn(|| q.pop()).map(|x| x.flow).collect();
        assert_eq!(order, vec![1, 7, 2, 4]);
    }
}
