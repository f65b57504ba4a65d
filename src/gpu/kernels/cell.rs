//! The cell's variant as the recurrent kernels' override constants (lstm_common.wgsl): none
//! for PyTorch's cell, so its pipelines are exactly the ones it always had.

use crate::cell::Cell;

/// The constants of `cell` for lstm_step / lstm_sequence; empty for PyTorch's cell.
pub fn cell_constants(cell: &Cell) -> Vec<(&'static str, f64)> {
    if cell.is_standard() {
        return Vec::new();
    }
    const NAMES: [[(&str, &str, &str); 3]; 2] = [
        [
            ("ACT_F0", "ALPHA_F0", "BETA_F0"),
            ("ACT_G0", "ALPHA_G0", "BETA_G0"),
            ("ACT_H0", "ALPHA_H0", "BETA_H0"),
        ],
        [
            ("ACT_F1", "ALPHA_F1", "BETA_F1"),
            ("ACT_G1", "ALPHA_G1", "BETA_G1"),
            ("ACT_H1", "ALPHA_H1", "BETA_H1"),
        ],
    ];
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let mut out = vec![
        ("CELL_VARIANT", 1.0),
        ("PEEPHOLE", flag(cell.peephole)),
        ("INPUT_FORGET", flag(cell.input_forget)),
        ("CLIP", cell.clip.unwrap_or(0.0) as f64),
    ];
    for (dir, names) in NAMES.iter().enumerate() {
        for (k, (act, alpha, beta)) in names.iter().enumerate() {
            let a = cell.activations[dir][k];
            let (x, y) = a.params();
            out.extend([
                (*act, a.code() as f64),
                (*alpha, x as f64),
                (*beta, y as f64),
            ]);
        }
    }
    out
}
