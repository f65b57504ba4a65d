//! The ONNX reader on arbitrary bytes: `Ok` or `Err`, never a panic, an abort or an
//! allocation larger than the input warrants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lstm_wgpu::io::onnx;

fuzz_target!(|data: &[u8]| {
    let _ = onnx::looks_like_onnx(data);
    let _ = onnx::read(data);
});
