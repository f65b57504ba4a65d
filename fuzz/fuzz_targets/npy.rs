//! The `.npy` readers on arbitrary bytes: `Ok` or `Err`, never a panic, an abort or an
//! allocation larger than the input warrants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lstm_wgpu::io::npy;

fuzz_target!(|data: &[u8]| {
    let _ = npy::decode_f32(data);
    let _ = npy::decode_i64(data);
});
