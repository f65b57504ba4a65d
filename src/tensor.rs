//! A minimal host tensor: a row-major buffer and its shape.

use crate::error::{Error, Result};
use crate::host::{element_count, try_filled, try_with_capacity};

/// A dense row-major array on the host. The last dimension is contiguous.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T = f32> {
    shape: Vec<usize>,
    data: Vec<T>,
}

impl<T: Copy> Tensor<T> {
    /// Wraps `data` with `shape`; errors when the element count differs (or overflows).
    pub fn new(shape: impl Into<Vec<usize>>, data: Vec<T>) -> Result<Self> {
        let shape = shape.into();
        let expected = element_count("tensor", &shape, std::mem::size_of::<T>())?;
        if expected != data.len() {
            return Err(Error::DataLength {
                what: "tensor".into(),
                shape,
                expected,
                actual: data.len(),
            });
        }
        Ok(Self { shape, data })
    }

    /// A tensor of `shape` with every element `value`. For a shape from a user (a flag, a
    /// file), [`Tensor::try_full`] is the one that returns an error where the host cannot
    /// hold it; this one panics when the element count overflows `usize`, and the process
    /// aborts when the allocation fails.
    pub fn full(shape: impl Into<Vec<usize>>, value: T) -> Self {
        let shape = shape.into();
        let len = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .unwrap_or_else(|| panic!("Tensor::full: shape {shape:?} overflows usize"));
        Self {
            shape,
            data: vec![value; len],
        }
    }

    /// [`Tensor::full`], or [`Error::HostMemory`] naming the shape and its bytes when the
    /// element count overflows or the host cannot reserve the memory.
    pub fn try_full(shape: impl Into<Vec<usize>>, value: T) -> Result<Self> {
        let shape = shape.into();
        let len = element_count("tensor", &shape, std::mem::size_of::<T>())?;
        let data = try_filled(&format!("tensor {shape:?}"), len, value)?;
        Ok(Self { shape, data })
    }

    /// A tensor of `shape` whose elements are `f(i)` for `i` in `0..len`, in row-major order;
    /// [`Error::HostMemory`] (naming `what` and the shape) when the host cannot hold it.
    pub fn try_from_fn(
        what: &str,
        shape: impl Into<Vec<usize>>,
        f: impl FnMut(usize) -> T,
    ) -> Result<Self> {
        let shape = shape.into();
        let len = element_count(what, &shape, std::mem::size_of::<T>())?;
        let mut data = try_with_capacity(&format!("{what} {shape:?}"), len)?;
        data.extend((0..len).map(f));
        Ok(Self { shape, data })
    }

    /// The size of each dimension, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The elements in row-major order, writable (the shape stays).
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The elements in row-major order, without the shape.
    pub fn into_data(self) -> Vec<T> {
        self.data
    }

    /// The same data with another shape of the same element count.
    pub fn reshape(self, shape: impl Into<Vec<usize>>) -> Result<Self> {
        Self::new(shape, self.data)
    }

    /// Converts every element with `f`, keeping the shape.
    pub fn map<U: Copy>(&self, f: impl Fn(T) -> U) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(|&x| f(x)).collect(),
        }
    }

    /// Errors unless the shape is exactly `expected`; `what` names the tensor.
    pub fn expect_shape(&self, what: &str, expected: &[usize]) -> Result<()> {
        if self.shape != expected {
            return Err(Error::Shape {
                what: what.into(),
                expected: expected.to_vec(),
                actual: self.shape.clone(),
            });
        }
        Ok(())
    }
}

/// The host bytes a call will hold at once (its big buffers, summed with overflow checks),
/// checked before any of them is allocated: [`HostBytes::check`] reserves the total once and
/// gives it back untouched, so that a call the host cannot hold is [`Error::HostMemory`]
/// naming its size, never an abort half-way (and never a page touched first: on Linux a
/// reservation larger than the machine's memory fails at once, where the same bytes in
/// several smaller buffers would each succeed and be killed when written).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HostBytes {
    /// `None` once the sum overflowed.
    bytes: Option<usize>,
}

/// Totals under this are not reserved to check them: a host that cannot hold them fails
/// anywhere, and a check per small call (a streamed step) would cost an allocation.
const CHECKED_FROM: usize = 64 << 20;

impl HostBytes {
    /// Nothing yet.
    pub fn new() -> Self {
        Self { bytes: Some(0) }
    }

    /// Adds `count` buffers of `dims` elements of `elem_bytes` bytes each.
    pub fn add(&mut self, dims: &[usize], elem_bytes: usize, count: usize) -> &mut Self {
        let buffer = dims
            .iter()
            .try_fold(elem_bytes, |n, &d| n.checked_mul(d))
            .and_then(|b| b.checked_mul(count));
        self.bytes = self.bytes.zip(buffer).and_then(|(a, b)| a.checked_add(b));
        self
    }

    /// The total so far (saturating at `u64::MAX`).
    pub fn total(&self) -> u64 {
        self.bytes.map_or(u64::MAX, |b| b as u64)
    }

    /// [`Error::HostMemory`] naming `what()` when the total overflows, exceeds `isize::MAX`
    /// (no allocation can be that large) or cannot be reserved; otherwise nothing (the
    /// reservation is given back without a page of it touched). `what` runs only on error.
    pub fn check(&self, what: impl FnOnce() -> String) -> Result<()> {
        let error = |what: String| Error::HostMemory {
            what,
            bytes: self.total(),
        };
        match self.bytes {
            None => Err(error(what())),
            Some(bytes) if bytes > isize::MAX as usize => Err(error(what())),
            Some(bytes) if bytes < CHECKED_FROM => Ok(()),
            Some(bytes) => {
                let mut probe: Vec<u8> = Vec::new();
                probe.try_reserve_exact(bytes).map_err(|_| error(what()))
            }
        }
    }
}

/// Swaps the first two axes of a `[a, b, rest]` buffer: returns `[b, a, rest]`.
/// Used to move between batch-first and time-major layouts.
pub(crate) fn swap_leading_axes<T: Copy>(data: &[T], a: usize, b: usize, rest: usize) -> Vec<T> {
    // `data` exists: a copy of it is within what the callers' entry checks counted
    let mut out = Vec::with_capacity(data.len());
    for j in 0..b {
        for i in 0..a {
            let start = (i * b + j) * rest;
            out.extend_from_slice(&data[start..start + rest]);
        }
    }
    out
}
