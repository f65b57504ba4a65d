//! A reader that stops early (`lstm-wgpu info | head -1`) ends the binary quietly: status 0,
//! nothing on stderr, no panic about a broken pipe.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

#[test]
fn a_closed_stdout_ends_quietly_with_status_0() {
    // `info` prints its first line before it opens a device, and the rest after: by then the
    // pipe below is closed.
    let mut child = Command::new(env!("CARGO_BIN_EXE_lstm-wgpu"))
        .arg("info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("one line arrives");
    assert!(
        first.starts_with("adapters wgpu sees"),
        "first line: {first:?}"
    );
    drop(stdout);

    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut stderr)
        .expect("stderr is text");
    let status = child.wait().expect("the binary exits");
    assert_eq!(stderr, "", "nothing on stderr");
    assert_eq!(status.code(), Some(0), "status 0 after the reader left");
}
