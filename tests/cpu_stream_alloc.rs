//! A `CpuStream` step allocates nothing after the first step (so it can run on an audio
//! thread): a counting global allocator sees zero allocations over 1,000 steps at B = 1 and
//! B = 4, for a one-layer model, a two-layer one with a projection and a head, and an ONNX
//! cell variant (peepholes).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use lstm_wgpu::cell::Cell as LstmCell;
use lstm_wgpu::cpu::{CpuStream, FastCpuLstm};
use lstm_wgpu::{Linear, LstmConfig, LstmWeights};

/// Counts the allocations of the threads that ask to be counted.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: a thread being torn down has no locals left
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every call goes to the system allocator unchanged; the counting touches only
// const-initialized thread locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn allocations(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCATIONS.with(|n| n.get())
}

#[test]
fn a_stream_step_allocates_nothing_after_the_first() {
    let peephole = LstmConfig::new(3, 24).cell(LstmCell {
        peephole: true,
        ..LstmCell::default()
    });
    let models = [
        LstmWeights::init(&LstmConfig::new(1, 40), 1).unwrap(),
        LstmWeights::init(&LstmConfig::new(8, 128).num_layers(2).proj_size(32), 2)
            .unwrap()
            .with_head(Linear::init(32, 3, 3).unwrap())
            .unwrap(),
        LstmWeights::init(&peephole, 4).unwrap(),
    ];
    for weights in &models {
        let input = weights.config().input_size;
        for batch in [1, 4] {
            let mut stream = CpuStream::new(FastCpuLstm::new(weights), batch).unwrap();
            let x: Vec<f32> = (0..batch * input).map(|i| (i % 5) as f32 * 0.1).collect();
            stream.step(&x).unwrap();
            let mut checksum = 0.0f32;
            let n = allocations(|| {
                for _ in 0..1000 {
                    checksum += stream.step(&x).unwrap()[0];
                }
            });
            assert!(checksum.is_finite());
            assert_eq!(n, 0, "{:?} at B = {batch}", weights.config());
        }
    }
    // the counter counts: a step's own first call allocates its accumulators
    let mut fresh = CpuStream::new(FastCpuLstm::new(&models[0]), 1).unwrap();
    assert!(allocations(|| drop(fresh.step(&[0.5]).unwrap().to_vec())) > 0);
}
