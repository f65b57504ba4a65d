//! The one error type of the crate. Every variant carries the numbers that were wrong.

use thiserror::Error;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `lstm-wgpu`.
#[derive(Debug, Error)]
pub enum Error {
    /// A configuration value is out of range.
    #[error("invalid config: {0}")]
    Config(String),

    /// A tensor has the wrong shape.
    #[error("{what}: expected shape {expected:?}, got {actual:?}")]
    Shape {
        /// The tensor's name.
        what: String,
        /// The shape it must have.
        expected: Vec<usize>,
        /// The shape it has.
        actual: Vec<usize>,
    },

    /// A shape's element count does not match the data length.
    #[error("{what}: shape {shape:?} holds {expected} elements but {actual} were given")]
    DataLength {
        /// The tensor's name.
        what: String,
        /// The shape given.
        shape: Vec<usize>,
        /// The shape's element count.
        expected: usize,
        /// The data's length.
        actual: usize,
    },

    /// An input value is out of range (a length, an index).
    #[error("invalid input: {0}")]
    Input(String),

    /// No GPU adapter could be found.
    #[error(
        "no GPU adapter found ({0}). Install a Vulkan, Metal or DX12 driver; on headless \
         Debian/Ubuntu `apt-get install -y mesa-vulkan-drivers` gives the lavapipe CPU adapter"
    )]
    NoAdapter(String),

    /// The adapter refused the device request.
    #[error("could not create a GPU device: {0}")]
    RequestDevice(#[from] wgpu::RequestDeviceError),

    /// A shape needs more than a device limit allows.
    #[error("{what} needs {needed} but the device limit `{limit}` is {available}")]
    Limit {
        /// What needs it (a buffer, a workgroup, with its shape).
        what: String,
        /// The name of the `wgpu::Limits` field.
        limit: &'static str,
        /// The amount needed.
        needed: u64,
        /// The device's limit.
        available: u64,
    },

    /// wgpu reported an error (validation, out of memory, device lost).
    #[error("GPU error during {during}: {source}")]
    Gpu {
        /// The operation that was running.
        during: &'static str,
        /// wgpu's error.
        #[source]
        source: wgpu::Error,
    },

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file (or stream, such as `stdout`).
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A file's content is not what it must be (format, key, dtype, shape).
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// The GPU cannot hold an allocation: larger than `max_buffer_size`, or the driver ran
    /// out of memory. The context and the other models on it stay usable.
    #[error(
        "out of GPU memory: {what} needs {bytes} bytes (device limits: max_buffer_size \
         {max_buffer_size}, max_storage_buffer_binding_size {max_binding})"
    )]
    OutOfMemory {
        /// What was being allocated (a buffer's label, with the call it belongs to).
        what: String,
        /// Its size in bytes.
        bytes: u64,
        /// The device's `max_buffer_size`.
        max_buffer_size: u64,
        /// The device's `max_storage_buffer_binding_size`.
        max_binding: u64,
    },

    /// The host cannot hold an allocation (a size from a flag or a file header too large).
    #[error("out of host memory: {what} needs {bytes} bytes")]
    HostMemory {
        /// What was being allocated, with its shape.
        what: String,
        /// Its size in bytes (saturating at `u64::MAX`).
        bytes: u64,
    },

    /// The GPU device is lost (destroyed, driver reset, unplugged). Every later call on the
    /// context returns this; [`crate::gpu::GpuContext::recreate`] makes a new device.
    #[error("GPU device lost during {during}: {reason}")]
    DeviceLost {
        /// The operation that found it lost.
        during: &'static str,
        /// The driver's reason, as wgpu reports it.
        reason: String,
    },

    /// A wait on the GPU took longer than the context's timeout.
    #[error("GPU wait timed out after {seconds} s during {during} (see GpuContext::set_timeout)")]
    Timeout {
        /// The operation that was waiting.
        during: &'static str,
        /// The timeout, in seconds.
        seconds: f64,
    },

    /// Waiting for the GPU or mapping a buffer failed.
    #[error("GPU readback failed: {0}")]
    Readback(String),

    /// An invariant of this crate did not hold: a bug in lstm-wgpu, never the caller's input.
    #[error("internal error (a bug in lstm-wgpu, please report it): {0}")]
    Internal(String),
}
