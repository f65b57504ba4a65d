//! A team of scoped threads that meet at a barrier once per phase of a timestep, and a slice
//! they write in disjoint parts.
//!
//! A recurrence needs every thread to see the whole of h_{t-1} before step t starts, so the
//! threads meet at least once per step. A spin barrier keeps that meeting to well under a
//! microsecond (a futex wake takes tens); after a short spin it yields, so that a worker
//! waiting for one that lost its core gives the core back.
//!
//! A team whose members keep waiting at the barrier has lost a core to other work on the
//! machine: once its waits (past [`SOLO_WINDOW`]) add up to more than half of its time, the
//! barrier that notices makes the team *solo*. From then on worker 0 takes every item and
//! every share, the others take none, and nobody waits: the rest of the call runs at one
//! thread's speed instead of at the speed of a thread that gets a core part of the time.
//! Each item is computed the same way whoever takes it, so the results do not change.
//!
//! The threads are kept between teams: one `rayon` pool per team size, shared by every model
//! in the process. Spawning a team's threads afresh for every layer of every call cost a
//! small training step half its time (T=40 B=32 H=32: 2.95 → 1.48 ms) and left the B=1
//! forward at the mercy of where the scheduler put each new thread (in some runs both
//! threads of a team shared one core, taking turns through the barrier's yield: 3-5 ms
//! instead of 1.2-1.5). A kept thread stays on its core, and with it its share of the
//! weights stays in that core's cache from one call to the next.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
#[cfg(not(target_arch = "wasm32"))]
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, TryLockError},
};

/// How many threads the CPU path uses: at least one (one on wasm32, which has no threads).
pub fn default_threads() -> usize {
    if cfg!(target_arch = "wasm32") {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `work(worker)` on `threads` threads and returns when all have finished: one thread
/// runs on the caller's thread; more run on the kept pool of that size while the caller
/// waits, or, when that pool is busy with another team (another thread's call, or a team
/// started from inside a team), on threads spawned for this call alone.
pub fn run_team<F: Fn(&Worker<'_>) + Sync>(threads: usize, work: F) {
    let barrier = Barrier::new(threads);
    let worker = |id| Worker::new(id, threads, &barrier);
    if threads <= 1 {
        return work(&worker(0));
    }
    run_threads(threads, &work, worker);
}

/// More than one thread: none on wasm32 (the thread count is checked before a team starts).
#[cfg(target_arch = "wasm32")]
fn run_threads<'a, F: Fn(&Worker<'a>) + Sync>(_: usize, _: &F, _: impl Fn(usize) -> Worker<'a>) {
    unreachable!("wasm32 has no threads: check_threads allows one");
}

#[cfg(not(target_arch = "wasm32"))]
fn run_threads<'a, F, W>(threads: usize, work: &F, worker: W)
where
    F: Fn(&Worker<'a>) + Sync,
    W: Fn(usize) -> Worker<'a> + Sync,
{
    if let Some(kept) = kept_pool(threads) {
        // a pool runs one team at a time: every thread of a team must be running at once
        let turn = match kept.free.try_lock() {
            Ok(turn) => Some(turn),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        if turn.is_some() {
            kept.pool
                .broadcast(|context| work(&worker(context.index())));
            return;
        }
    }
    std::thread::scope(|scope| {
        for id in 1..threads {
            let (work, worker) = (&work, &worker);
            scope.spawn(move || work(&worker(id)));
        }
        work(&worker(0));
    });
}

/// What one meeting of a team of `threads` costs on this machine, in nanoseconds: the
/// fastest of 5 rounds of 200 meetings, measured on the first call for each team size
/// (about a millisecond) and kept for the process. The fastest round is the cost of the
/// meeting itself; rounds slowed by other work on the machine are passed over. A team so
/// slowed that it went solo measured nothing: that call gets [`BUSY_MEETING_NS`] and the
/// next call after a second measures again. On the project's 2-vCPU VM the same two
/// threads met in 100-200 ns one day and in about 1 µs another, which moved the point where
/// splitting a step pays from H = 55 to H = 200.
pub fn meeting_ns(threads: usize) -> u64 {
    if threads <= 1 {
        return 0;
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        /// the cost, and until when it stands (a busy machine's, a second)
        type Measured = (u64, Option<Instant>);
        static MEASURED: OnceLock<Mutex<HashMap<usize, Measured>>> = OnceLock::new();
        let table = MEASURED.get_or_init(Default::default);
        let known = table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&threads)
            .copied();
        if let Some((ns, until)) = known {
            if until.is_none_or(|until| Instant::now() < until) {
                return ns;
            }
        }
        const ROUNDS: usize = 5;
        const MEETINGS: usize = 200;
        let rounds: Vec<AtomicUsize> = (0..ROUNDS).map(|_| AtomicUsize::new(0)).collect();
        let went_solo = AtomicBool::new(false);
        run_team(threads, |worker| {
            for round in &rounds {
                worker.sync();
                let start = Instant::now();
                for _ in 0..MEETINGS {
                    worker.sync();
                }
                if worker.id == 0 {
                    round.store(start.elapsed().as_nanos() as usize, Ordering::Relaxed);
                }
            }
            if worker.id == 0 && worker.solo() {
                went_solo.store(true, Ordering::Relaxed);
            }
        });
        let fastest = rounds.iter().map(|r| r.load(Ordering::Relaxed)).min();
        let measured = match went_solo.load(Ordering::Relaxed) {
            true => (
                BUSY_MEETING_NS,
                Some(Instant::now() + Duration::from_secs(1)),
            ),
            false => ((fastest.unwrap_or(0) / MEETINGS) as u64, None),
        };
        table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(threads, measured);
        measured.0
    }
    #[cfg(target_arch = "wasm32")]
    0
}

/// [`meeting_ns`] on a machine too busy to measure it: a scheduler's time slice.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub const BUSY_MEETING_NS: u64 = 1_000_000;

/// A kept pool of threads and the lock that gives it to one team at a time.
#[cfg(not(target_arch = "wasm32"))]
struct KeptPool {
    pool: rayon::ThreadPool,
    free: Mutex<()>,
    /// the process that started its threads: a child made by `fork` has none of them
    process: u32,
}

/// The process's pool of `threads` threads, made on first use; `None` (spawn threads for this
/// call) if its threads cannot be started or the table of pools is busy.
#[cfg(not(target_arch = "wasm32"))]
fn kept_pool(threads: usize) -> Option<Arc<KeptPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<KeptPool>>>> = OnceLock::new();
    // not `lock`: in a child forked while another thread held it, it stays held forever
    let mut pools = match POOLS.get_or_init(Default::default).try_lock() {
        Ok(pools) => pools,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return None,
    };
    let process = std::process::id();
    if let Some(kept) = pools.get(&threads) {
        if kept.process == process {
            return Some(kept.clone());
        }
        // forked: the parent's pool has no threads here; leave it be (dropping it would
        // signal threads that do not exist) and start this process's own
        std::mem::forget(pools.remove(&threads));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("lstm-wgpu cpu {i}/{threads}"))
        .build()
        .ok()?;
    let kept = Arc::new(KeptPool {
        pool,
        free: Mutex::new(()),
        process,
    });
    pools.insert(threads, kept.clone());
    Some(kept)
}

/// One thread of a team.
pub struct Worker<'a> {
    pub id: usize,
    pub threads: usize,
    barrier: &'a Barrier,
}

impl<'a> Worker<'a> {
    /// Member `id` of a team of `threads` that meets at `barrier` (made for `threads`).
    pub fn new(id: usize, threads: usize, barrier: &'a Barrier) -> Self {
        debug_assert!(id < threads && barrier.threads == threads.max(1));
        Self {
            id,
            threads,
            barrier,
        }
    }

    /// Waits until every thread of the team has called `sync` as often as this one. Writes
    /// made before it are visible to every thread after it. Returns at once in a solo team.
    pub fn sync(&self) {
        self.barrier.wait();
    }

    /// Whether the team has gone solo (see the module's notes): worker 0 alone works, and
    /// the others must not touch shared data ([`Worker::share`] and [`StealQueue::claims`]
    /// give them nothing). Changes only inside a `sync`, the same for every member.
    pub fn solo(&self) -> bool {
        self.barrier.is_solo()
    }

    /// This thread's share of `0..n`: contiguous, the sizes differing by at most one, the
    /// same split on every call; in a solo team all of it for worker 0, none for the rest.
    pub fn share(&self, n: usize) -> std::ops::Range<usize> {
        if self.solo() {
            return if self.id == 0 { 0..n } else { 0..0 };
        }
        (self.id * n / self.threads)..((self.id + 1) * n / self.threads)
    }
}

/// Items `0..n` handed out afresh each round (a timestep's phase): every worker takes its
/// own share first, in order, then steals what is left of the others' shares. A thread slowed
/// by the machine no longer holds everyone at the barrier, and nothing about the results
/// changes: each item is computed the same way whoever takes it.
pub struct StealQueue {
    n: usize,
    /// `next[round % 2][worker]`: the next unclaimed item of that worker's share
    next: [Vec<AtomicUsize>; 2],
}

impl StealQueue {
    pub fn new(threads: usize, n: usize) -> Self {
        // one thread takes its items in order: no counters (and nothing allocated)
        let starts = || match threads {
            0 | 1 => Vec::new(),
            _ => (0..threads)
                .map(|id| AtomicUsize::new(id * n / threads))
                .collect(),
        };
        Self {
            n,
            next: [starts(), starts()],
        }
    }

    /// The items `worker` takes in round `round`; across the team each item of `0..n` is
    /// taken exactly once. Rounds must be separated by a barrier.
    pub fn claims<'q>(&'q self, worker: &Worker<'_>, round: usize) -> Claims<'q> {
        let plain = |range| Claims {
            queue: self,
            counters: &[],
            id: 0,
            threads: 0,
            offset: 0,
            plain: range,
        };
        if self.next[0].is_empty() {
            return plain(0..self.n);
        }
        if worker.solo() {
            // worker 0 takes everything, in order; the counters are not used again
            return plain(if worker.id == 0 { 0..self.n } else { 0..0 });
        }
        // ready this worker's share for the next round: nobody uses that parity until the
        // barrier after this round
        let start = worker.id * self.n / worker.threads;
        self.next[(round + 1) % 2][worker.id].store(start, Ordering::Relaxed);
        Claims {
            queue: self,
            counters: &self.next[round % 2],
            id: worker.id,
            threads: worker.threads,
            offset: 0,
            plain: 0..0,
        }
    }
}

/// See [`StealQueue::claims`].
pub struct Claims<'q> {
    queue: &'q StealQueue,
    counters: &'q [AtomicUsize],
    id: usize,
    threads: usize,
    /// which share is being taken: this worker's own (0), then the next ones
    offset: usize,
    /// items taken in order, without counters (one thread, or a solo team)
    plain: std::ops::Range<usize>,
}

impl Iterator for Claims<'_> {
    type Item = usize;

    #[inline(always)]
    fn next(&mut self) -> Option<usize> {
        if let Some(item) = self.plain.next() {
            return Some(item);
        }
        while self.offset < self.threads {
            let owner = (self.id + self.offset) % self.threads;
            let end = (owner + 1) * self.queue.n / self.threads;
            let item = self.counters[owner].fetch_add(1, Ordering::Relaxed);
            if item < end {
                return Some(item);
            }
            self.offset += 1;
        }
        None
    }
}

/// Spins of a barrier wait before it yields its core (about 20 µs on the 2-vCPU AMD EPYC VM
/// where this was tuned). Longer spins (2^16) left the forward at B=1 taking 12-16 ms instead
/// of 1.5 in about half the runs: when the other worker was off its core, the waiting one
/// spun for a millisecond before letting it back on.
const SPINS_BEFORE_YIELD: u32 = 1 << 10;

/// How long a team runs before its waits are weighed: long enough that one early wait (an
/// interrupt, a page fault) is not taken for a lost core.
pub const SOLO_WINDOW: Duration = Duration::from_millis(1);

/// What the spin of a wait costs, in nanoseconds: measured once per process.
fn spin_ns() -> u64 {
    static SPIN: OnceLock<u64> = OnceLock::new();
    *SPIN.get_or_init(|| {
        let start = Instant::now();
        for _ in 0..SPINS_BEFORE_YIELD {
            std::hint::spin_loop();
        }
        start.elapsed().as_nanos() as u64
    })
}

/// The team's meeting point: a spin barrier that yields after a short spin, weighs the
/// team's waits and turns it solo (see the module's notes).
pub struct Barrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    /// when the team started (none for one thread: wasm32 has threads of one, and no clock)
    started: Option<Instant>,
    /// on lines of their own: `solo` is read at every share and claim, and must not miss
    /// in the cache each time the others touch the counters (that cost 8% of a forward at
    /// H = 128, B = 1 on two threads)
    waited_ns: OwnLine<AtomicU64>,
    /// a waiter found the team waiting too much: the next release makes it solo
    wants_solo: OwnLine<AtomicBool>,
    /// set by the last arrival of a wait, before it releases the others; never unset
    solo: OwnLine<AtomicBool>,
}

/// A value alone on its cache line (and its neighbour, which some CPUs fetch in pairs).
#[repr(align(128))]
struct OwnLine<T>(T);

impl Barrier {
    pub fn new(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            started: (threads > 1).then(Instant::now),
            waited_ns: OwnLine(AtomicU64::new(0)),
            wants_solo: OwnLine(AtomicBool::new(false)),
            solo: OwnLine(AtomicBool::new(false)),
        }
    }

    fn is_solo(&self) -> bool {
        // written before a release that every member acquires (`wait`), read after it
        self.solo.0.load(Ordering::Relaxed)
    }

    fn wait(&self) {
        if self.threads == 1 || self.is_solo() {
            return;
        }
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.arrived.store(0, Ordering::Relaxed);
            if self.wants_solo.0.load(Ordering::Relaxed) {
                self.solo.0.store(true, Ordering::Relaxed);
            }
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let released = || self.generation.load(Ordering::Acquire) != generation;
        for _ in 0..SPINS_BEFORE_YIELD {
            if released() {
                return;
            }
            std::hint::spin_loop();
        }
        // a long wait: yield, and weigh it (the short ones cost no clock reads)
        let yielding = Instant::now();
        while !released() {
            std::thread::yield_now();
        }
        let now = Instant::now();
        let this = spin_ns() + (now - yielding).as_nanos() as u64;
        let waited = self.waited_ns.0.fetch_add(this, Ordering::Relaxed) + this;
        let elapsed = self.started.map_or(Duration::ZERO, |started| now - started);
        let others = (self.threads - 1) as u128;
        if elapsed > SOLO_WINDOW && 2 * waited as u128 > elapsed.as_nanos() * others {
            self.wants_solo.0.store(true, Ordering::Relaxed);
        }
    }
}

/// A mutable slice shared by a team, each thread writing its own disjoint parts between
/// barriers.
pub struct Shared<'a, T> {
    ptr: *mut T,
    len: usize,
    _slice: PhantomData<&'a mut [T]>,
}

// SAFETY: access goes through `part`, whose contract keeps writes disjoint between
// barriers; T itself must be shareable.
unsafe impl<T: Send + Sync> Sync for Shared<'_, T> {}
unsafe impl<T: Send + Sync> Send for Shared<'_, T> {}

impl<'a, T> Shared<'a, T> {
    pub fn new(slice: &'a mut [T]) -> Self {
        Self {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            _slice: PhantomData,
        }
    }

    /// `len` elements from `start`. Panics when out of bounds.
    ///
    /// # Safety
    /// Between two barriers no other thread may touch these elements while this thread
    /// writes them.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn part(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start <= self.len && len <= self.len - start);
        // SAFETY: in bounds (asserted); exclusive per the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }

    /// The whole slice to read.
    ///
    /// # Safety
    /// No thread may write it until the next barrier.
    pub unsafe fn read(&self) -> &[T] {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_range_once() {
        for threads in 1..6 {
            let barrier = Barrier::new(threads);
            let mut seen = vec![0; 23];
            for id in 0..threads {
                let w = Worker::new(id, threads, &barrier);
                w.share(23).for_each(|i| seen[i] += 1);
            }
            assert_eq!(seen, vec![1; 23]);
        }
    }

    #[test]
    fn steal_queue_hands_out_each_item_once_per_round() {
        let queue = StealQueue::new(3, 50);
        let counts: Vec<AtomicUsize> = (0..50 * 20).map(|_| AtomicUsize::new(0)).collect();
        run_team(3, |w| {
            for round in 0..20 {
                for i in queue.claims(w, round) {
                    counts[round * 50 + i].fetch_add(1, Ordering::Relaxed);
                    if w.id == 0 {
                        std::thread::yield_now(); // a slow worker: the others steal
                    }
                }
                w.sync();
            }
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    }

    #[test]
    fn teams_run_on_kept_threads_and_never_wait_for_a_busy_pool() {
        // a free pool: every worker on one of its named threads, the same ones next time
        let names = |threads| {
            let names = Mutex::new(Vec::new());
            run_team(threads, |w| {
                let name = std::thread::current().name().map(str::to_owned);
                names.lock().unwrap().push((w.id, name));
                w.sync();
            });
            let mut names = names.into_inner().unwrap();
            names.sort();
            names
        };
        let first = names(6); // a size no other test uses, so the pool is free
        assert!(first
            .iter()
            .all(|(_, n)| n.as_deref().is_some_and(|n| n.starts_with("lstm-wgpu cpu"))));
        assert_eq!(names(6), first);
        // a team started from inside a team of the same size finds the pool busy and runs
        // on threads of its own (waiting for the pool would never end); so do teams of
        // several callers at once
        let inner_runs = AtomicUsize::new(0);
        run_team(2, |w| {
            w.sync();
            if w.id == 0 {
                run_team(2, |inner| {
                    inner.sync();
                    inner_runs.fetch_add(1, Ordering::Relaxed);
                });
            }
            w.sync();
        });
        assert_eq!(inner_runs.load(Ordering::Relaxed), 2);
        let total = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    run_team(2, |w| {
                        for _ in 0..50 {
                            w.sync();
                        }
                        total.fetch_add(1, Ordering::Relaxed);
                    })
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn barrier_orders_the_phases() {
        // each thread writes its share of the slots, then after the barrier reads everyone's
        // (4 threads on fewer cores may go solo: then worker 0's share is every slot)
        let mut slots = vec![0usize; 4];
        let shared = Shared::new(&mut slots);
        let sums = std::sync::Mutex::new(Vec::new());
        run_team(4, |w| {
            for round in 1..=100 {
                for slot in w.share(4) {
                    // SAFETY: the slots of this thread's share are its only.
                    unsafe { shared.part(slot, 1)[0] = round * (slot + 1) };
                }
                w.sync();
                // in a solo team only worker 0 touches shared data
                if w.id == 0 || !w.solo() {
                    // SAFETY: nobody writes until the next barrier.
                    let total: usize = unsafe { shared.read() }.iter().sum();
                    assert_eq!(total, round * 10);
                }
                w.sync();
            }
            sums.lock().unwrap().push(w.id);
        });
        assert_eq!(sums.lock().unwrap().len(), 4);
    }

    #[test]
    fn a_team_that_keeps_waiting_goes_solo_and_still_does_everything_once() {
        // worker 1 loses its core for a millisecond in each of the first rounds: the team's
        // waits soon pass half its time, and worker 0 alone takes every item and share
        let (rounds, n, slow) = (40, 30, 4);
        let queue = StealQueue::new(2, n);
        let counts: Vec<AtomicUsize> = (0..rounds * n).map(|_| AtomicUsize::new(0)).collect();
        let shared_rows: Vec<AtomicUsize> = (0..rounds * n).map(|_| AtomicUsize::new(0)).collect();
        let solo_from = Mutex::new(Vec::new());
        run_team(2, |w| {
            let mut went_solo = None;
            for round in 0..rounds {
                if w.id == 1 && round < slow {
                    std::thread::sleep(SOLO_WINDOW);
                }
                for i in queue.claims(w, round) {
                    counts[round * n + i].fetch_add(1, Ordering::Relaxed);
                }
                for i in w.share(n) {
                    shared_rows[round * n + i].fetch_add(1, Ordering::Relaxed);
                }
                w.sync();
                if w.solo() && went_solo.is_none() {
                    went_solo = Some(round);
                }
            }
            solo_from.lock().unwrap().push(went_solo);
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        assert!(shared_rows.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        let solo_from = solo_from.into_inner().unwrap();
        assert_eq!(
            solo_from[0], solo_from[1],
            "every member sees it at the same barrier"
        );
        let round = solo_from[0].expect("the team went solo");
        assert!(round <= slow, "solo after round {round}");
    }
}
