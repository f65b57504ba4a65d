//! One layer on the team, as its [`Plan`] says: every worker of the team takes items of the
//! input projection of every direction, the team meets once, then each worker runs the
//! recurrences of its groups, each group meeting at its own barrier (none for a group of
//! one thread).

use pulp::{Simd, WithSimd};

use super::forward::{DirectionJob, GroupQueues};
use super::kernel::accumulators;
use super::plan::Plan;
use super::team::{Barrier, Worker};

/// A team worker's part of one layer.
pub struct LayerRun<'a> {
    /// the layer's directions, in order
    pub jobs: &'a [DirectionJob<'a>],
    pub plan: &'a Plan,
    /// one per group of the plan
    pub barriers: &'a [Barrier],
    /// one per group of the plan
    pub queues: &'a [GroupQueues],
    pub team: &'a Worker<'a>,
}

impl WithSimd for LayerRun<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let team = self.team;
        let rows = self.jobs.iter().map(DirectionJob::partial_rows).max();
        let mut store = Vec::new();
        let partial = accumulators::<S>(&mut store, rows.unwrap_or(0));
        for job in self.jobs {
            job.project_inputs(simd, team, partial);
        }
        team.sync();
        for (g, group) in self.plan.groups.iter().enumerate() {
            if !group.workers.contains(&team.id) {
                continue;
            }
            let id = team.id - group.workers.start;
            let worker = Worker::new(id, group.threads(), &self.barriers[g]);
            let job = &self.jobs[group.direction];
            job.recur(simd, &worker, group.rows.clone(), &self.queues[g], partial);
        }
    }
}
