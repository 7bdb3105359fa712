//! The primal network simplex for the balanced transportation problem (LEMON's scheme:
//! spanning-tree bases as parent/thread/successor arrays, block-search pricing, an artificial
//! root for the initial basis).

const NONE: usize = usize::MAX;
/// Relative tolerance on negative reduced costs (rounding of the potentials).
const PRICING_TOLERANCE: f64 = 64.0 * f64::EPSILON;

/// Network simplex for the balanced transportation problem between `n_src` sources and
/// `n_dst` sinks with integer supplies (sinks negative, the total zero). Nodes: sources `0..n_src`, sinks
/// `n_src..n_src + n_dst`, root `n_src + n_dst`. Arcs: `i·n_dst + j` from source `i` to sink `j`
/// (implicit), then one artificial arc per node linking it to the root.
pub(super) struct NetworkSimplex<'a> {
    n_src: usize,
    n_dst: usize,
    pub(super) n_real: usize,
    pub(super) root: usize,
    cost: &'a [f64],
    /// `cost` with the arcs of the spanning tree priced at `+∞` (what pricing scans).
    pricing_cost: Vec<f64>,
    art_cost: f64,
    /// Supply of every node (negative = demand), root excluded.
    supply: Vec<i64>,
    pub(super) flow: Vec<i64>,
    parent: Vec<usize>,
    pub(super) pred: Vec<usize>,
    /// `+1` when `pred[u]` points from `u` up to its parent, `−1` when down from the parent.
    pred_dir: Vec<i64>,
    thread: Vec<usize>,
    rev_thread: Vec<usize>,
    succ_num: Vec<usize>,
    last_succ: Vec<usize>,
    pi: Vec<f64>,
    dirty_revs: Vec<usize>,
    block_size: usize,
    next_arc: usize,
    // The current pivot.
    in_arc: usize,
    join: usize,
    u_in: usize,
    v_in: usize,
    u_out: usize,
    delta: i64,
}

impl<'a> NetworkSimplex<'a> {
    pub(super) fn new(cost: &'a [f64], n_src: usize, n_dst: usize, supply: Vec<i64>) -> Self {
        let n_nodes = n_src + n_dst;
        let n_real = n_src * n_dst;
        let root = n_nodes;
        let max_cost = cost.iter().fold(0.0_f64, |m, &c| m.max(c.abs()));
        let art_cost = (max_cost + 1.0) * n_nodes as f64;
        let mut s = Self {
            n_src,
            n_dst,
            n_real,
            root,
            cost,
            pricing_cost: cost.to_vec(),
            art_cost,
            supply,
            flow: vec![0; n_real + n_nodes],
            parent: vec![NONE; n_nodes + 1],
            pred: vec![NONE; n_nodes + 1],
            pred_dir: vec![0; n_nodes + 1],
            thread: vec![0; n_nodes + 1],
            rev_thread: vec![0; n_nodes + 1],
            succ_num: vec![0; n_nodes + 1],
            last_succ: vec![0; n_nodes + 1],
            pi: vec![0.0; n_nodes + 1],
            dirty_revs: Vec::new(),
            block_size: ((n_real as f64).sqrt() as usize).max(10),
            next_arc: 0,
            in_arc: NONE,
            join: NONE,
            u_in: NONE,
            v_in: NONE,
            u_out: NONE,
            delta: 0,
        };
        // Initial basis: every node hangs from the root by its artificial arc.
        s.thread[root] = 0;
        s.rev_thread[0] = root;
        s.succ_num[root] = n_nodes + 1;
        s.last_succ[root] = root - 1;
        for u in 0..n_nodes {
            let e = n_real + u;
            s.parent[u] = root;
            s.pred[u] = e;
            s.thread[u] = u + 1;
            s.rev_thread[u + 1] = u;
            s.succ_num[u] = 1;
            s.last_succ[u] = u;
            if s.supply[u] >= 0 {
                s.pred_dir[u] = 1;
                s.flow[e] = s.supply[u];
            } else {
                s.pred_dir[u] = -1;
                s.pi[u] = art_cost;
                s.flow[e] = -s.supply[u];
            }
        }
        s
    }

    fn source(&self, arc: usize) -> usize {
        if arc < self.n_real {
            arc / self.n_dst
        } else if self.supply[arc - self.n_real] >= 0 {
            arc - self.n_real
        } else {
            self.root
        }
    }

    fn target(&self, arc: usize) -> usize {
        if arc < self.n_real {
            self.n_src + arc % self.n_dst
        } else if self.supply[arc - self.n_real] >= 0 {
            self.root
        } else {
            arc - self.n_real
        }
    }

    fn arc_cost(&self, arc: usize) -> f64 {
        if arc < self.n_real {
            self.cost[arc]
        } else if self.supply[arc - self.n_real] >= 0 {
            0.0
        } else {
            self.art_cost
        }
    }

    /// Block-search pricing over the real arcs: the most negative reduced cost
    /// `c_ij + π_i − π_j` of the first block (in cyclic order from `next_arc`) that has one.
    fn find_entering_arc(&mut self) -> bool {
        let mut best = (0.0, NONE);
        let mut arc = self.next_arc;
        let mut scanned = 0;
        while scanned < self.n_real {
            let block = self.block_size.min(self.n_real - scanned);
            let mut left = block;
            while left > 0 {
                let (i, j0) = (arc / self.n_dst, arc % self.n_dst);
                let len = left.min(self.n_dst - j0);
                self.scan_row_segment(i, j0, len, &mut best);
                arc += len;
                if arc == self.n_real {
                    arc = 0;
                }
                left -= len;
            }
            scanned += block;
            if best.1 != NONE && self.is_improving(best.1, best.0) {
                self.in_arc = best.1;
                self.next_arc = arc;
                return true;
            }
        }
        false
    }

    /// Lowers `best` (reduced cost, arc) with the non-basic arcs `(i, j0..j0 + len)`.
    fn scan_row_segment(&self, i: usize, j0: usize, len: usize, best: &mut (f64, usize)) {
        const L: usize = 8;
        let start = i * self.n_dst + j0;
        let cost = &self.pricing_cost[start..start + len];
        let pi_dst = &self.pi[self.n_src + j0..self.n_src + j0 + len];
        // Pass 1: the minimum of c_ij − π_j (vectorised; tree arcs priced at +∞).
        let mut lane_min = [f64::INFINITY; L];
        let body = len - len % L;
        for (c, p) in cost[..body]
            .chunks_exact(L)
            .zip(pi_dst[..body].chunks_exact(L))
        {
            for l in 0..L {
                let v = c[l] - p[l];
                lane_min[l] = if v < lane_min[l] { v } else { lane_min[l] };
            }
        }
        let mut min = lane_min
            .iter()
            .fold(f64::INFINITY, |m, &v| if v < m { v } else { m });
        for k in body..len {
            let v = cost[k] - pi_dst[k];
            min = if v < min { v } else { min };
        }
        let rc = min + self.pi[i];
        if rc < best.0 {
            // Pass 2: where it is.
            let k = (0..len)
                .find(|&k| cost[k] - pi_dst[k] == min)
                .expect("the minimum is attained");
            *best = (rc, start + k);
        }
    }

    /// A reduced cost counts as negative beyond the rounding of its terms.
    fn is_improving(&self, arc: usize, rc: f64) -> bool {
        let i = arc / self.n_dst;
        let j = self.n_src + arc % self.n_dst;
        let scale = self.cost[arc]
            .abs()
            .max(self.pi[i].abs())
            .max(self.pi[j].abs());
        rc < -PRICING_TOLERANCE * scale
    }

    fn find_join_node(&mut self) {
        let (mut u, mut v) = (self.source(self.in_arc), self.target(self.in_arc));
        while u != v {
            if self.succ_num[u] < self.succ_num[v] {
                u = self.parent[u];
            } else {
                v = self.parent[v];
            }
        }
        self.join = u;
    }

    /// The blocking arc of the cycle closed by the entering arc (strongly feasible rule).
    fn find_leaving_arc(&mut self) -> bool {
        let first = self.source(self.in_arc);
        let second = self.target(self.in_arc);
        let mut delta = i64::MAX;
        let mut result = 0;
        let mut u = first;
        while u != self.join {
            if self.pred_dir[u] == 1 && self.flow[self.pred[u]] < delta {
                delta = self.flow[self.pred[u]];
                self.u_out = u;
                result = 1;
            }
            u = self.parent[u];
        }
        let mut u = second;
        while u != self.join {
            if self.pred_dir[u] == -1 && self.flow[self.pred[u]] <= delta {
                delta = self.flow[self.pred[u]];
                self.u_out = u;
                result = 2;
            }
            u = self.parent[u];
        }
        if result == 1 {
            (self.u_in, self.v_in) = (first, second);
        } else {
            (self.u_in, self.v_in) = (second, first);
        }
        self.delta = delta;
        result != 0
    }

    fn change_flow(&mut self) {
        let delta = self.delta;
        if delta > 0 {
            self.flow[self.in_arc] += delta;
            let mut u = self.source(self.in_arc);
            while u != self.join {
                self.flow[self.pred[u]] -= self.pred_dir[u] * delta;
                u = self.parent[u];
            }
            let mut u = self.target(self.in_arc);
            while u != self.join {
                self.flow[self.pred[u]] += self.pred_dir[u] * delta;
                u = self.parent[u];
            }
        }
        self.pricing_cost[self.in_arc] = f64::INFINITY;
        let out_arc = self.pred[self.u_out];
        if out_arc < self.n_real {
            self.pricing_cost[out_arc] = self.cost[out_arc];
        }
    }

    /// Re-hangs the subtree cut off by the leaving arc below the entering arc, keeping the
    /// thread order, successor counts and last successors consistent.
    fn update_tree_structure(&mut self) {
        let (u_in, v_in, u_out, join) = (self.u_in, self.v_in, self.u_out, self.join);
        let old_rev_thread = self.rev_thread[u_out];
        let old_succ_num = self.succ_num[u_out];
        let old_last_succ = self.last_succ[u_out];
        let v_out = self.parent[u_out];
        let in_dir = if u_in == self.source(self.in_arc) {
            1
        } else {
            -1
        };

        if u_in == u_out {
            self.parent[u_in] = v_in;
            self.pred[u_in] = self.in_arc;
            self.pred_dir[u_in] = in_dir;
            if self.thread[v_in] != u_out {
                let after = self.thread[old_last_succ];
                self.thread[old_rev_thread] = after;
                self.rev_thread[after] = old_rev_thread;
                let after = self.thread[v_in];
                self.thread[v_in] = u_out;
                self.rev_thread[u_out] = v_in;
                self.thread[old_last_succ] = after;
                self.rev_thread[after] = old_last_succ;
            }
        } else {
            // When old_rev_thread == v_in, join and v_out coincide.
            let thread_continue = if old_rev_thread == v_in {
                self.thread[old_last_succ]
            } else {
                self.thread[v_in]
            };
            // Walk the stem from u_in up to u_out, reversing parent links.
            let mut stem = u_in;
            let mut par_stem = v_in;
            let mut last = self.last_succ[u_in];
            let mut after = self.thread[last];
            self.thread[v_in] = u_in;
            self.dirty_revs.clear();
            self.dirty_revs.push(v_in);
            while stem != u_out {
                let next_stem = self.parent[stem];
                self.thread[last] = next_stem;
                self.dirty_revs.push(last);
                // Unlink the subtree of stem from the thread list.
                let before = self.rev_thread[stem];
                self.thread[before] = after;
                self.rev_thread[after] = before;
                self.parent[stem] = par_stem;
                par_stem = stem;
                stem = next_stem;
                last = if self.last_succ[stem] == self.last_succ[par_stem] {
                    self.rev_thread[par_stem]
                } else {
                    self.last_succ[stem]
                };
                after = self.thread[last];
            }
            self.parent[u_out] = par_stem;
            self.thread[last] = thread_continue;
            self.rev_thread[thread_continue] = last;
            self.last_succ[u_out] = last;
            if old_rev_thread != v_in {
                self.thread[old_rev_thread] = after;
                self.rev_thread[after] = old_rev_thread;
            }
            for k in 0..self.dirty_revs.len() {
                let u = self.dirty_revs[k];
                let t = self.thread[u];
                self.rev_thread[t] = u;
            }
            // Shift pred, pred_dir, succ_num and last_succ along the reversed stem.
            let mut tmp_sc = 0usize;
            let tmp_ls = self.last_succ[u_out];
            let mut u = u_out;
            while u != u_in {
                let p = self.parent[u];
                self.pred[u] = self.pred[p];
                self.pred_dir[u] = -self.pred_dir[p];
                tmp_sc = tmp_sc + self.succ_num[u] - self.succ_num[p];
                self.succ_num[u] = tmp_sc;
                self.last_succ[p] = tmp_ls;
                u = p;
            }
            self.pred[u_in] = self.in_arc;
            self.pred_dir[u_in] = in_dir;
            self.succ_num[u_in] = old_succ_num;
        }

        // Last successors from v_in towards the root.
        let up_limit_out = if self.last_succ[join] == v_in {
            join
        } else {
            NONE
        };
        let last_succ_out = self.last_succ[u_out];
        let mut u = v_in;
        while u != NONE && self.last_succ[u] == v_in {
            self.last_succ[u] = last_succ_out;
            u = self.parent[u];
        }
        // Last successors from v_out towards the root.
        if join != old_rev_thread && v_in != old_rev_thread {
            let mut u = v_out;
            while u != up_limit_out && self.last_succ[u] == old_last_succ {
                self.last_succ[u] = old_rev_thread;
                u = self.parent[u];
            }
        } else if last_succ_out != old_last_succ {
            let mut u = v_out;
            while u != up_limit_out && self.last_succ[u] == old_last_succ {
                self.last_succ[u] = last_succ_out;
                u = self.parent[u];
            }
        }
        // Successor counts on both paths to the join node.
        let mut u = v_in;
        while u != join {
            self.succ_num[u] += old_succ_num;
            u = self.parent[u];
        }
        let mut u = v_out;
        while u != join {
            self.succ_num[u] -= old_succ_num;
            u = self.parent[u];
        }
    }

    /// Shifts the potentials of the re-hung subtree so the entering arc has reduced cost 0.
    fn update_potential(&mut self) {
        let u_in = self.u_in;
        let sigma = self.pi[self.v_in]
            - self.pi[u_in]
            - self.pred_dir[u_in] as f64 * self.arc_cost(self.in_arc);
        let end = self.thread[self.last_succ[u_in]];
        let mut u = u_in;
        while u != end {
            self.pi[u] += sigma;
            u = self.thread[u];
        }
    }

    pub(super) fn run(&mut self) {
        while self.find_entering_arc() {
            self.find_join_node();
            let bounded = self.find_leaving_arc();
            // Every cycle through a real arc contains an artificial or real arc pointing
            // against it (the graph is bipartite and balanced), so the flow is bounded.
            debug_assert!(
                bounded,
                "unbounded pivot in a balanced transportation problem"
            );
            if !bounded {
                break;
            }
            self.change_flow();
            self.update_tree_structure();
            self.update_potential();
        }
    }

    /// `Σ flow · cost` over the real arcs (only tree arcs carry flow).
    pub(super) fn total_cost(&self) -> f64 {
        (0..self.root)
            .map(|u| self.pred[u])
            .filter(|&a| a < self.n_real)
            .map(|a| self.flow[a] as f64 * self.cost[a])
            .sum()
    }
}
