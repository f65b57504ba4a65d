//! GPU against the CPU reference (f64) on random configurations drawing every option:
//! variable lengths, unbatched input, heads, projections, batch_first, h0/c0
//! (the same cases `lstm-wgpu check` runs).

mod common;

use common::{gpu, GPU_VS_F64};
use lstm_wgpu::check::Case;

#[test]
fn random_cases_agree() {
    let (mut lengths, mut unbatched, mut heads) = (0, 0, 0);
    let seeds = common::sweep(40, 16);
    for seed in 0..seeds as u64 {
        let case = Case::random(seed).unwrap();
        lengths += case.lengths.is_some() as usize;
        unbatched += (case.x.shape().len() == 2) as usize;
        heads += case.weights.head().is_some() as usize;
        if let Some((what, m)) = case.compare(gpu(), GPU_VS_F64).unwrap() {
            panic!(
                "seed {seed}: {}: {what}[{}] got {} want {} ({} off)",
                case.describe(),
                m.index,
                m.got,
                m.want,
                m.count
            );
        }
    }
    // the draws of seeds 0..16 cover each option as 0..40 do, in proportion
    assert!(
        lengths > seeds / 8 && unbatched >= 1 && heads > seeds / 8,
        "coverage: {lengths} {unbatched} {heads} of {seeds}"
    );
}

/// Lengths are checked before anything runs.
#[test]
fn bad_lengths_are_errors() {
    let mut case = Case::random(1).unwrap();
    let batch = if case.weights.config().batch_first {
        case.x.shape()[0]
    } else {
        case.x.shape()[1]
    };
    let seq = if case.weights.config().batch_first {
        case.x.shape()[1]
    } else {
        case.x.shape()[0]
    };
    case.lengths = Some(vec![seq + 1; batch]);
    let msg = case.compare(gpu(), GPU_VS_F64).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("lengths[0] = {}", seq + 1)) && msg.contains(&format!("1..={seq}")),
        "{msg}"
    );
    case.lengths = Some(vec![1; batch + 1]);
    let msg = case.compare(gpu(), GPU_VS_F64).unwrap_err().to_string();
    assert!(msg.contains(&format!("{} entries", batch + 1)), "{msg}");
}
