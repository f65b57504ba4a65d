//! `GpuContext`: a device, its queue and the pipelines, created once and shared by models.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::alloc::uniform_init;
use super::pipelines::Pipelines;
use super::sync::lock;
use super::tuning::{Tuning, TuningState};
use crate::error::{Error, Result};
use crate::gpu::kernels::{
    BackwardTiles, DeviceCaps, RecurrentShape, StepIndex, GEMV_MAX_ROWS, STEP_INDEX_BINDING_SIZE,
};
use crate::gpu::wisdom::{AdapterKey, Choice, Entry, Family, ShapeClass, Wisdom, MAX_K_SPLITS};

/// Steps per chunk of the per-step kernels: the step-index buffer has this many slots.
pub const MAX_CHUNK_STEPS: usize = 1024;

/// How long a wait on the GPU may take before it is [`Error::Timeout`], unless set otherwise
/// ([`GpuContext::set_timeout`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How [`GpuContext::with_options`] creates its device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextOptions {
    /// Request WebGPU's default limits instead of the adapter's own, so that what runs here
    /// also runs in a browser (shapes then chunk sooner and workgroups stay smaller).
    pub webgpu_limits: bool,
    /// Where kernel choices come from (default [`Tuning::Wisdom`]: saved measurements where
    /// they exist, the built-in table elsewhere).
    pub tuning: Tuning,
    /// The wisdom file (default: `LSTM_WGPU_TUNE_FILE`, else the platform's cache directory;
    /// see [`crate::gpu::wisdom::default_path`]).
    pub wisdom_file: Option<PathBuf>,
}

/// What the context knows of its device's health, shared with the device's callbacks.
#[derive(Default)]
struct Health {
    /// the reason, once the device is lost
    lost: Mutex<Option<String>>,
    /// errors outside every error scope (only on a device this crate created)
    uncaptured: Mutex<Vec<String>>,
}

/// A wgpu device and queue with this crate's pipelines on it. Cheap to clone; models hold
/// a clone.
///
/// # Errors, loss and threads
/// Every call that touches the device returns what went wrong on it as [`Error`] (error
/// scopes around each call); nothing panics on a GPU error. A device this crate creates
/// also gets an uncaptured-error handler that records instead of panicking
/// ([`GpuContext::take_uncaptured_errors`]) and a device-lost callback; a caller's device
/// ([`GpuContext::from_device`]) keeps the handlers its owner installed, and its owner
/// reports a loss with [`GpuContext::mark_lost`]. wgpu reports a loss once the work in
/// flight has drained, so the first call that waits on the device (or finds it idle) sees
/// it; from then on every call returns
/// [`Error::DeviceLost`]; [`GpuContext::recreate`] makes a new device, and models are
/// uploaded again from their host weights. Every wait on the GPU gives up after
/// [`GpuContext::timeout`] with [`Error::Timeout`].
///
/// `GpuContext` is `Send + Sync`: clones on several threads may record and submit at once
/// (wgpu's device and queue are thread-safe, the pipeline cache is behind a lock, error
/// scopes are per thread). On wgpu's GL backend, whose driver context is single-threaded
/// and guarded by a lock that gives up (and panics) after a few seconds, the context takes
/// its calls' device work in turn behind a lock of its own that waits as long as needed
/// ([`GpuContext::serializes_device_work`]). A panic raised inside wgpu during a call does
/// not unwind into the caller: the call returns [`Error::DeviceLost`] naming the panic, the
/// context is marked lost, and [`GpuContext::recreate`] gives a working one. A model (`GpuLstm`, `GpuStatePool`, `GpuTrainer`) is `Send +
/// Sync` too but its calls take `&mut self`: one thread at a time per model, any number of
/// models at once.
#[derive(Clone)]
pub struct GpuContext {
    inner: Arc<Inner>,
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter_info: Option<wgpu::AdapterInfo>,
    pipelines: Pipelines,
    /// slot i (at i * step_stride bytes) holds StepIndex { local: i }
    step_slots: wgpu::Buffer,
    step_stride: u32,
    health: Arc<Health>,
    timeout_ns: AtomicU64,
    /// how the device was made, when this crate made it (for `recreate`)
    options: Option<ContextOptions>,
    /// the kernel-choice policy, the wisdom in use and the tuner's pins
    tuning: Mutex<TuningState>,
    /// the lock that takes device work in turn, where the backend needs it (see
    /// [`GpuContext::serializes_device_work`])
    turns: Option<parking_lot::ReentrantMutex<()>>,
}

impl GpuContext {
    /// Picks an adapter (honouring `WGPU_BACKEND`, `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`) and
    /// creates a device with the adapter's own limits, and timestamp queries and subgroups
    /// where the adapter has them. Blocks until the device exists.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Self> {
        Self::with_options(ContextOptions::default())
    }

    /// [`GpuContext::new`] with options (e.g. WebGPU's default limits).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_options(options: ContextOptions) -> Result<Self> {
        pollster::block_on(Self::new_async(options))
    }

    /// The async form of [`GpuContext::with_options`].
    pub async fn new_async(options: ContextOptions) -> Result<Self> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = wgpu::util::initialize_adapter_from_env_or_default(&instance, None)
            .await
            .map_err(|e| Error::NoAdapter(e.to_string()))?;
        let required_limits = if options.webgpu_limits {
            wgpu::Limits::default()
        } else {
            adapter.limits()
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("lstm-wgpu"),
                required_features: adapter.features()
                    & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP),
                required_limits,
                ..Default::default()
            })
            .await?;
        let health = Arc::new(Health::default());
        let lost = health.clone();
        device.set_device_lost_callback(move |reason, message| {
            *lock(&lost.lost) = Some(format!("{reason:?} {message}").trim().to_string());
        });
        let recorded = health.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            log::error!("uncaptured GPU error: {error}");
            lock(&recorded.uncaptured).push(error.to_string());
        }));
        let info = adapter.get_info();
        Self::build(device, queue, Some(info), health, Some(options)).await
    }

    /// Uses a caller's device and queue (for embedding in a wgpu application). The caller's
    /// limits apply; nothing beyond WebGPU's defaults is needed. The device's handlers stay
    /// the caller's (see [`GpuContext::mark_lost`]). Blocks; see
    /// [`GpuContext::from_device_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Result<Self> {
        pollster::block_on(Self::from_device_async(device, queue))
    }

    /// The async form of [`GpuContext::from_device`].
    pub async fn from_device_async(device: wgpu::Device, queue: wgpu::Queue) -> Result<Self> {
        Self::build(device, queue, None, Arc::default(), None).await
    }

    /// A new device like this context's, after a loss (models are then made again, e.g.
    /// `GpuLstm::new(&new, &weights)`). A caller's device is the caller's to recreate:
    /// [`Error::Config`]. Blocks; see [`GpuContext::recreate_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn recreate(&self) -> Result<Self> {
        pollster::block_on(self.recreate_async())
    }

    /// The async form of [`GpuContext::recreate`].
    pub async fn recreate_async(&self) -> Result<Self> {
        let options = self.inner.options.clone().ok_or_else(|| {
            Error::Config(
                "this context uses the caller's device (from_device); create a new device and call from_device again".into(),
            )
        })?;
        let new = Self::new_async(options).await?;
        new.set_timeout(self.timeout());
        Ok(new)
    }

    async fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter_info: Option<wgpu::AdapterInfo>,
        health: Arc<Health>,
        options: Option<ContextOptions>,
    ) -> Result<Self> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let pipelines = Pipelines::new(&device);
        let step_stride = device
            .limits()
            .min_uniform_buffer_offset_alignment
            .max(STEP_INDEX_BINDING_SIZE as u32);
        let mut slots = vec![0u8; MAX_CHUNK_STEPS * step_stride as usize];
        for i in 0..MAX_CHUNK_STEPS {
            let at = i * step_stride as usize;
            let index = StepIndex {
                local: i as u32,
                _pad: [0; 3],
            };
            slots[at..at + STEP_INDEX_BINDING_SIZE as usize]
                .copy_from_slice(bytemuck::bytes_of(&index));
        }
        let step_slots = uniform_init(&device, "step indices", &slots);
        let (oom, scope) = (oom.pop(), scope.pop()); // both popped before either wait
        let errors = [oom.await, scope.await];
        if let Some(source) = errors.into_iter().flatten().next() {
            return Err(Error::Gpu {
                during: "context creation",
                source,
            });
        }
        // GL's driver context is one per adapter, shared by every thread: take turns on it
        let backend = adapter_info
            .as_ref()
            .map_or_else(|| device.adapter_info().backend, |info| info.backend);
        let turns = (backend == wgpu::Backend::Gl).then(|| parking_lot::ReentrantMutex::new(()));
        let key = adapter_info.as_ref().map(AdapterKey::of);
        let tuning = match &options {
            Some(o) => TuningState::new(o.tuning, key, o.wisdom_file.clone()),
            None => TuningState::new(Tuning::Wisdom, None, None),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                tuning: Mutex::new(tuning),
                device,
                queue,
                adapter_info,
                pipelines,
                step_slots,
                step_stride,
                health,
                timeout_ns: AtomicU64::new(DEFAULT_TIMEOUT.as_nanos() as u64),
                options,
                turns,
            }),
        })
    }

    /// Whether this context's calls take their device work (pipeline and buffer creation,
    /// writes, submissions, maps, polls) in turn: on wgpu's GL backend, where the driver's
    /// context is single-threaded. wgpu guards it with a lock that panics after waiting a
    /// few seconds, which a shader compile on a software driver outlasts; the context's
    /// own lock waits without a limit, so wgpu's never waits long. One lock per context:
    /// wgpu-hal's GL context (and its lock) is one per adapter, and each context has an
    /// adapter of its own. A caller's device ([`GpuContext::from_device`]) on GL is the
    /// caller's to keep in turn with its own work.
    pub fn serializes_device_work(&self) -> bool {
        self.inner.turns.is_some()
    }

    /// The device's turn, held by a call for its device work where the backend needs it
    /// (re-entrant: a call inside a call keeps the turn it has).
    pub(crate) fn device_turn(&self) -> Option<parking_lot::ReentrantMutexGuard<'_, ()>> {
        self.inner.turns.as_ref().map(|turns| turns.lock())
    }

    /// Ends a turn whose guard was forgotten (see `drop_turn.rs`).
    ///
    /// # Safety
    /// This thread took the turn with [`GpuContext::device_turn`] and forgot the guard, and
    /// nothing else ends that turn.
    pub(crate) unsafe fn end_forgotten_turn(&self) {
        if let Some(turns) = &self.inner.turns {
            // SAFETY: the caller's contract is force_unlock's.
            unsafe { turns.force_unlock() };
        }
    }

    /// Submits `commands` to the queue (every submission of the crate goes through here).
    pub(crate) fn submit(
        &self,
        commands: impl IntoIterator<Item = wgpu::CommandBuffer>,
    ) -> wgpu::SubmissionIndex {
        #[cfg(feature = "fault-hooks")]
        super::fault_hooks::before_submission();
        self.inner.queue.submit(commands)
    }

    /// `body`'s result, or, when it panics (a panic inside wgpu: e.g. its GL backend's lock
    /// giving up), [`Error::DeviceLost`] naming the panic's message, with the context
    /// marked lost: the panic does not unwind into the caller, and
    /// [`GpuContext::recreate`] gives a working context.
    pub(crate) fn contained<T>(
        &self,
        during: &'static str,
        body: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let payload = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
            Ok(out) => return out,
            Err(payload) => payload,
        };
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        let reason = format!("a panic inside wgpu during {during}: {message}");
        log::error!("{reason}");
        self.mark_lost(reason.clone());
        Err(Error::DeviceLost { during, reason })
    }

    /// Records that the device is lost (from the owner's device-lost callback, for a
    /// caller's device): every later call returns [`Error::DeviceLost`] with `reason`.
    pub fn mark_lost(&self, reason: impl Into<String>) {
        lock(&self.inner.health.lost).get_or_insert(reason.into());
    }

    /// Why the device was lost, once it is.
    pub fn lost_reason(&self) -> Option<String> {
        lock(&self.inner.health.lost).clone()
    }

    /// [`Error::DeviceLost`] once the device is lost.
    pub(crate) fn check_alive(&self, during: &'static str) -> Result<()> {
        match self.lost_reason() {
            Some(reason) => Err(Error::DeviceLost { during, reason }),
            None => Ok(()),
        }
    }

    /// The GPU errors that happened outside every error scope (work recorded directly on
    /// [`GpuContext::device`], not through this crate), oldest first, emptying the record.
    /// Always empty for a caller's device, whose handler is the caller's.
    pub fn take_uncaptured_errors(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.inner.health.uncaptured))
    }

    /// How long a wait on the GPU may take ([`DEFAULT_TIMEOUT`] unless set).
    pub fn timeout(&self) -> Duration {
        Duration::from_nanos(self.inner.timeout_ns.load(Ordering::Relaxed))
    }

    /// Sets how long a wait on the GPU (a readback, `wait_idle`) may take before it returns
    /// [`Error::Timeout`], for every clone of this context. The work itself goes on; the
    /// next call waits behind it. On wgpu's GL backend a submission runs to its end inside
    /// the submit call, so a later wait finds it done and never times out: there the
    /// timeout covers only what is still pending when a wait starts.
    pub fn set_timeout(&self, timeout: Duration) {
        let ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        self.inner.timeout_ns.store(ns, Ordering::Relaxed);
    }

    /// Waits for `submission` (all work when `None`) for at most [`GpuContext::timeout`].
    pub(crate) fn wait(
        &self,
        during: &'static str,
        submission: Option<wgpu::SubmissionIndex>,
    ) -> Result<()> {
        self.check_alive(during)?;
        let timeout = self.timeout();
        let polled = {
            let _turn = self.device_turn();
            self.contained(during, || {
                Ok(self.device().poll(wgpu::PollType::Wait {
                    submission_index: submission,
                    timeout: Some(timeout),
                }))
            })?
        };
        self.check_alive(during)?;
        match polled {
            Ok(_) => Ok(()),
            Err(wgpu::PollError::Timeout) => Err(Error::Timeout {
                during,
                seconds: timeout.as_secs_f64(),
            }),
            Err(e @ wgpu::PollError::WrongSubmissionIndex(..)) => {
                Err(Error::Internal(format!("{during}: {e}")))
            }
        }
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    pub(crate) fn pipelines(&self) -> &Pipelines {
        &self.inner.pipelines
    }

    /// The step-index buffer and its slot stride in bytes (slot i holds i).
    pub(crate) fn step_slots(&self) -> (&wgpu::Buffer, u32) {
        (&self.inner.step_slots, self.inner.step_stride)
    }

    /// What the kernel choice needs to know of the device: its limits and subgroup size.
    pub fn caps(&self) -> DeviceCaps {
        caps_of(self.device())
    }

    /// Whether GPU time can be measured (the device has TIMESTAMP_QUERY).
    pub fn has_timestamps(&self) -> bool {
        self.device()
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// The adapter this context created its device on (`None` for a caller's device).
    pub fn adapter_info(&self) -> Option<&wgpu::AdapterInfo> {
        self.inner.adapter_info.as_ref()
    }

    /// A one-line description of the adapter, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)`.
    pub fn adapter_name(&self) -> String {
        match &self.inner.adapter_info {
            Some(info) => format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type),
            None => "caller-provided device".into(),
        }
    }

    /// Bytes of device memory this context's device has allocated (buffers, staging), where
    /// the backend reports it (Vulkan, DX12).
    pub fn memory_in_use(&self) -> Option<u64> {
        self.device()
            .generate_allocator_report()
            .map(|r| r.total_allocated_bytes)
    }

    /// Where this context's kernel choices come from.
    pub fn tuning(&self) -> Tuning {
        lock(&self.inner.tuning).policy
    }

    /// Changes where kernel choices come from, for every clone of this context; models
    /// prepared before keep the kernels they were built with until they prepare again.
    pub fn set_tuning(&self, tuning: Tuning) {
        lock(&self.inner.tuning).policy = tuning;
    }

    /// The wisdom file this context loads from and saves to, if it has one.
    pub fn wisdom_file(&self) -> Option<PathBuf> {
        lock(&self.inner.tuning).path.clone()
    }

    /// The wisdom in use (`None` where no usable file was found or the policy is `Table`
    /// and none was loaded).
    pub fn wisdom(&self) -> Option<Wisdom> {
        lock(&self.inner.tuning).wisdom().cloned()
    }

    /// The key wisdom is saved under for this context's adapter (`None` for a caller's
    /// device).
    pub fn adapter_key(&self) -> Option<AdapterKey> {
        self.adapter_info().map(AdapterKey::of)
    }

    /// Loads a wisdom file explicitly (e.g. one an application ships), and saves to it from
    /// then on; the number of choices it holds. Unlike the file found at start-up, a file
    /// that cannot be used here is an error: another adapter's, another version's, corrupt.
    /// A caller's device (from [`GpuContext::from_device`]) takes the file's adapter as its
    /// own.
    pub fn load_wisdom(&self, path: &Path) -> Result<usize> {
        lock(&self.inner.tuning).load(path)
    }

    /// Uses `wisdom` (e.g. decoded from bytes an application embeds); an error when it was
    /// measured on another adapter.
    pub fn use_wisdom(&self, wisdom: Wisdom) -> Result<()> {
        lock(&self.inner.tuning).use_wisdom(wisdom)
    }

    /// Writes the wisdom in use to its file (merged with what the file holds, atomically);
    /// the path written.
    pub fn save_wisdom(&self) -> Result<PathBuf> {
        lock(&self.inner.tuning).save()
    }

    /// Keeps a measured choice in the wisdom in use (the tuner).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // the tuner is native only
    pub(crate) fn record_choice(
        &self,
        family: Family,
        class: ShapeClass,
        entry: Entry,
    ) -> Result<()> {
        lock(&self.inner.tuning).record(family, class, entry)
    }

    /// Forces `choice` for `class` while a tuner times it (`None` lifts it). Other models on
    /// this context that prepare meanwhile would use it too: tune on a quiet context.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // the tuner is native only
    pub(crate) fn pin_choice(&self, family: Family, class: ShapeClass, choice: Option<Choice>) {
        lock(&self.inner.tuning).pin(family, class, choice);
    }

    /// The pinned or saved choice of `family` for `shape` (of `class`) when there is one that
    /// runs it on this device; `None`: the table's.
    pub(crate) fn tuned_choice(
        &self,
        family: Family,
        class: ShapeClass,
        shape: RecurrentShape,
    ) -> Option<Choice> {
        let caps = self.caps();
        lock(&self.inner.tuning).lookup(family, class, shape, &caps)
    }

    /// The most rows a product runs as gemv for `shape`: tuned, else the table's.
    pub(crate) fn gemv_rows(&self, class: ShapeClass, shape: RecurrentShape) -> usize {
        match self.tuned_choice(Family::Gemv, class, shape) {
            Some(Choice::Gemv { rows }) => rows as usize,
            _ => GEMV_MAX_ROWS,
        }
    }

    /// The most ways a weight-gradient product splits K for `shape`: tuned, else the table's.
    pub(crate) fn max_k_splits(&self, class: ShapeClass, shape: RecurrentShape) -> usize {
        match self.tuned_choice(Family::KSplit, class, shape) {
            Some(Choice::KSplit { max }) => max as usize,
            _ => MAX_K_SPLITS as usize,
        }
    }

    /// The backward step's tiles for `shape`: tuned, else the table's.
    pub(crate) fn backward_tiles(
        &self,
        class: ShapeClass,
        shape: RecurrentShape,
    ) -> Result<BackwardTiles> {
        match self.tuned_choice(Family::Backward, class, shape) {
            Some(Choice::Backward(tiles)) => Ok(tiles),
            _ => BackwardTiles::for_shape(shape.hidden, shape.batch, &self.device().limits()),
        }
    }

    /// Whether `class` is to be measured before it runs (policy `Measure`, nothing saved).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // the tuner is native only
    pub(crate) fn needs_measuring(&self, class: ShapeClass) -> bool {
        lock(&self.inner.tuning).needs_measuring(class)
    }

    /// Notes that `class` was measured in this process.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))] // the tuner is native only
    pub(crate) fn mark_measured(&self, class: ShapeClass) {
        lock(&self.inner.tuning).mark_measured(class);
    }

    /// Waits until the GPU has finished all submitted work (at most
    /// [`GpuContext::timeout`]).
    pub fn wait_idle(&self) -> Result<()> {
        self.wait("wait_idle", None)
    }
}

/// The limits and smallest subgroup size (with SUBGROUP) of `device`.
pub(crate) fn caps_of(device: &wgpu::Device) -> DeviceCaps {
    DeviceCaps {
        limits: device.limits(),
        subgroup_size: device
            .features()
            .contains(wgpu::Features::SUBGROUP)
            .then(|| device.adapter_info().subgroup_min_size),
    }
}
