//! How one layer's recurrences share the threads: independent recurrences side by side
//! first (a bidirectional layer's two directions; rows of the batch when a step is small),
//! and one recurrence split across threads, with a barrier every step, only where a step is
//! big enough to repay the barrier. Every plan computes each element the same way, so the
//! plan never changes a result.

use std::fmt;
use std::ops::Range;

/// Multiply-adds of one timestep's recurrent product (B · 4H · H_out) below which a step is
/// never split across threads: a barrier per step costs more than the split saves even when
/// the threads meet fastest. Measured on the project's machine (2 vCPU AMD EPYC, `bench
/// --device cpu --seq 2000 --batch 1`, median of 3) on a day its threads met in 100-200 ns:
/// H = 48 (9,216) ran in 0.78 ms on one thread and 0.89 ms on two; H = 64 (16,384) in
/// 1.33 ms and 1.01 ms. Above it, [`split_min_macs`] decides from what a meeting costs now.
pub const SPLIT_STEP_MIN_MACS: usize = 12_000;

/// Multiply-adds one thread does per nanosecond in a step (product and gate math), to weigh
/// a split's saving against a meeting: measured 35 at H = 128 and 29 at H = 256 with
/// AVX-512, 23 at H = 256 with AVX2 (`bench --device cpu --seq 1000 --batch 1 --threads 1`).
pub const STEP_MACS_PER_NS: usize = 30;

/// The multiply-adds from which splitting a step over `threads` threads pays, when the
/// threads meet in `meeting_ns`: the split saves (1 − 1/n) of the step's time and must
/// save at least two meetings (on the day the threads met in about 1 µs, H = 128 ran in
/// 1.85 ms on one thread and 2.49 ms on two, H = 256 in 8.69 and 5.50 ms: the two-meeting
/// rule puts the line at 120,000, between H = 128's 65,536 and H = 256's 262,144). Never
/// below [`SPLIT_STEP_MIN_MACS`].
pub fn split_min_macs(threads: usize, meeting_ns: u64) -> usize {
    let n = threads.max(2) as u128;
    let macs = 2 * STEP_MACS_PER_NS as u128 * meeting_ns as u128 * n / (n - 1);
    SPLIT_STEP_MIN_MACS.max(usize::try_from(macs).unwrap_or(usize::MAX))
}

/// Multiply-adds of a layer's input projection (T·B · I · 4H per direction) from which it
/// runs on every thread even when the recurrence runs on fewer: waking a pooled thread costs
/// tens of microseconds, which 1,000,000 multiply-adds (about 30 µs on one core of the
/// project's machine) repay.
pub const PARALLEL_PROJECTION_MIN_MACS: usize = 1_000_000;

/// One recurrence of a plan: `direction`'s rows `rows` on workers `workers` of the team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// the direction (0 forward, 1 reverse)
    pub direction: usize,
    /// the batch rows it runs
    pub rows: Range<usize>,
    /// the team's workers it runs on
    pub workers: Range<usize>,
}

impl Group {
    /// Threads the group's recurrence is split across (a barrier per step when above one).
    pub fn threads(&self) -> usize {
        self.workers.len()
    }
}

/// How one layer runs: the team's threads all take part in the input projection, then each
/// worker runs the groups it belongs to, in order (groups sharing workers run one after
/// the other; groups on different workers, side by side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// threads of the team (all of them project the inputs)
    pub team: usize,
    /// the layer's recurrences, in order of direction
    pub groups: Vec<Group>,
    /// the multiply-adds from which a step would have been split (`None`: one thread per
    /// direction, no split possible), and the step's own
    pub split_from: Option<usize>,
    /// one direction's multiply-adds per timestep
    pub step_macs: usize,
}

/// What a plan is made from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Work {
    /// the most threads to use
    pub threads: usize,
    pub directions: usize,
    pub batch: usize,
    /// one direction's multiply-adds per timestep, all rows (B · 4H · H_out)
    pub step_macs: usize,
    /// one direction's input projection, all timesteps (T·B · I · 4H)
    pub projection_macs: usize,
    /// unit blocks of a step: the most threads one step can be split across
    pub blocks: usize,
    /// items of the input projection, all directions: the most threads it can use
    pub projection_items: usize,
}

impl Plan {
    /// The plan for `work`, where splitting a step over n threads pays from
    /// `split_from(n)` multiply-adds (asked only for steps of at least
    /// [`SPLIT_STEP_MIN_MACS`]).
    pub(crate) fn new(work: Work, split_from: impl Fn(usize) -> usize) -> Self {
        let Work {
            threads,
            directions,
            batch,
            ..
        } = work;
        let threads = threads.max(1);
        // the directions side by side when each can have a thread of its own
        let side_by_side = directions > 1 && threads >= directions;
        let per_direction = if side_by_side {
            threads / directions
        } else {
            threads
        };
        let split_threads = per_direction.min(work.blocks.max(1));
        let threshold = (split_threads > 1).then(|| match work.step_macs {
            m if m < SPLIT_STEP_MIN_MACS => SPLIT_STEP_MIN_MACS,
            _ => split_from(split_threads),
        });
        let split = threshold.is_some_and(|from| work.step_macs >= from);
        let mut groups = Vec::new();
        for direction in 0..directions {
            let first = if side_by_side {
                direction * per_direction
            } else {
                0
            };
            let group = |rows, workers: Range<usize>| Group {
                direction,
                rows,
                workers: first + workers.start..first + workers.end,
            };
            if split || per_direction == 1 || batch <= 1 {
                // one recurrence, split by unit blocks when the step repays a barrier
                let n = if split { split_threads } else { 1 };
                groups.push(group(0..batch, 0..n));
            } else {
                // rows are independent recurrences: each share of them on a thread of its own,
                // no meetings (each thread reads all of W_hh, as one thread doing every row
                // would)
                let n = per_direction.min(batch);
                for w in 0..n {
                    groups.push(group(w * batch / n..(w + 1) * batch / n, w..w + 1));
                }
            }
        }
        let used = groups.iter().map(|g| g.workers.end).max().unwrap_or(1);
        let projection = work.projection_macs.saturating_mul(directions);
        let team = if projection >= PARALLEL_PROJECTION_MIN_MACS {
            threads.min(work.projection_items.max(used))
        } else {
            used
        };
        Self {
            team,
            groups,
            split_from: threshold,
            step_macs: work.step_macs,
        }
    }

    /// The groups worker `id` runs, in order.
    pub fn groups_of(&self, id: usize) -> impl Iterator<Item = &Group> {
        self.groups.iter().filter(move |g| g.workers.contains(&id))
    }
}

impl fmt::Display for Plan {
    /// One line: e.g. "2 directions side by side, 1 thread each" or "each step split over
    /// 2 threads".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let directions = self
            .groups
            .iter()
            .map(|g| g.direction)
            .max()
            .map_or(1, |d| d + 1);
        let side_by_side = directions > 1 && self.groups.iter().any(|g| g.workers.start > 0);
        let row_groups = self.groups.len() / directions;
        let split = self.groups.iter().map(Group::threads).max().unwrap_or(1);
        let mut parts = Vec::new();
        if side_by_side {
            parts.push(format!("{directions} directions side by side"));
        } else if directions > 1 {
            parts.push(format!("{directions} directions in turn"));
        }
        if row_groups > 1 {
            parts.push(format!(
                "rows in {row_groups} independent groups, 1 thread each"
            ));
        } else if split > 1 {
            parts.push(format!("each step split over {split} threads"));
        } else {
            parts.push("1 thread per recurrence".into());
        }
        match self.split_from {
            Some(from) if split > 1 => parts.push(format!(
                "a step of {} multiply-adds, split from {from} here",
                self.step_macs
            )),
            Some(from) => parts.push(format!(
                "a step of {} multiply-adds, not split below {from} here",
                self.step_macs
            )),
            None => {}
        }
        let used = self.groups.iter().map(|g| g.workers.end).max().unwrap_or(1);
        if self.team > used {
            parts.push(format!("input projection on {} threads", self.team));
        }
        write!(f, "{}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(threads: usize, directions: usize, batch: usize, step_macs: usize) -> Work {
        Work {
            threads,
            directions,
            batch,
            step_macs,
            projection_macs: 0,
            blocks: 8,
            projection_items: 100,
        }
    }

    impl Plan {
        /// With splitting paying from [`SPLIT_STEP_MIN_MACS`] on.
        fn new_fixed(work: Work) -> Self {
            Plan::new(work, |_| SPLIT_STEP_MIN_MACS)
        }
    }

    #[test]
    fn a_split_must_save_two_meetings() {
        assert_eq!(split_min_macs(2, 0), SPLIT_STEP_MIN_MACS);
        assert_eq!(split_min_macs(2, 1_000), 4 * STEP_MACS_PER_NS * 1_000);
        assert!(split_min_macs(4, 1_000) < split_min_macs(2, 1_000));
        assert_eq!(split_min_macs(2, u64::MAX), usize::MAX);
        // a slow meeting keeps a step whole that a fast one would split
        let w = work(2, 1, 1, 65_536);
        assert_eq!(
            Plan::new(w, |n| split_min_macs(n, 150)).groups[0].threads(),
            2
        );
        assert_eq!(
            Plan::new(w, |n| split_min_macs(n, 1_000)).groups[0].threads(),
            1
        );
    }

    /// Every (direction, row) is in exactly one group, on workers inside the team.
    fn covers(plan: &Plan, directions: usize, batch: usize) {
        for d in 0..directions {
            for b in 0..batch {
                let n = plan
                    .groups
                    .iter()
                    .filter(|g| g.direction == d && g.rows.contains(&b))
                    .count();
                assert_eq!(n, 1, "{plan:?}: direction {d} row {b}");
            }
        }
        assert!(plan.groups.iter().all(|g| g.workers.end <= plan.team));
    }

    #[test]
    fn plans_cover_every_recurrence_once() {
        for threads in [1, 2, 3, 7] {
            for directions in [1, 2] {
                for batch in [1, 5] {
                    for macs in [100, SPLIT_STEP_MIN_MACS] {
                        let plan = Plan::new_fixed(work(threads, directions, batch, macs));
                        covers(&plan, directions, batch);
                        assert!(plan.team <= threads);
                    }
                }
            }
        }
    }

    #[test]
    fn independent_recurrences_go_side_by_side_first() {
        let plan = Plan::new_fixed(work(2, 2, 1, 2_500));
        assert_eq!(plan.groups.len(), 2);
        assert_eq!(plan.groups[0].workers, 0..1);
        assert_eq!(plan.groups[1].workers, 1..2);
        assert_eq!(
            plan.to_string(),
            "2 directions side by side; 1 thread per recurrence"
        );
        let plan = Plan::new(work(2, 1, 1, 20_000), |_| 50_000);
        assert_eq!(
            plan.to_string(),
            "1 thread per recurrence; a step of 20000 multiply-adds, not split below 50000 here"
        );
        // a big step on 4 threads: each direction split over 2
        let plan = Plan::new_fixed(work(4, 2, 16, 1 << 20));
        assert_eq!(plan.groups[1].workers, 2..4);
        // small steps of 5 rows on 3 threads: the rows in 3 groups
        let plan = Plan::new_fixed(work(3, 1, 5, 1_000));
        let rows: Vec<_> = plan.groups.iter().map(|g| g.rows.clone()).collect();
        assert_eq!(rows, [0..1, 1..3, 3..5]);
        // one thread: everything in turn on worker 0
        let plan = Plan::new_fixed(work(1, 2, 5, 1 << 20));
        assert!(plan.groups.iter().all(|g| g.workers == (0..1)));
        assert_eq!(plan.team, 1);
    }

    #[test]
    fn a_big_projection_takes_every_thread() {
        let mut w = work(2, 1, 1, 2_500);
        w.projection_macs = PARALLEL_PROJECTION_MIN_MACS;
        let plan = Plan::new_fixed(w);
        assert_eq!((plan.team, plan.groups.len()), (2, 1));
        assert!(plan.to_string().ends_with("input projection on 2 threads"));
    }
}
