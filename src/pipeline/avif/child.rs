//! AVIF decoding in a child process, so that a crash of the AV1 decoder
//! costs one request (422) instead of the whole worker.
//!
//! rav1d 1.1 can panic inside its `extern "C"` API on corrupt streams, and
//! a panic cannot unwind out of `extern "C"`: the process aborts. The
//! container is still parsed in-process ([`av1::parse`] contains its own
//! panics), so size limits are checked before anything is spawned; the
//! AV1 decoding itself runs in `img-proxy __decode-avif`, a hidden
//! subcommand of our own binary:
//!
//! - stdin: the whole AVIF file (the child re-parses it: a few microseconds,
//!   and no second serialisation format for the container's items);
//! - argument `--max-pixels N`: the pixel limit in force;
//! - stdout on success (exit 0): [`MAGIC`], width and height (u32 LE), the
//!   channel count (u8: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), then exactly
//!   `width * height * channels` bytes of interleaved 8-bit pixels;
//! - on bad input: exit [`EXIT_CORRUPT`] with one line on stderr (the
//!   reason); exit [`EXIT_INTERNAL`] for our own failures.
//!
//! The parent bounds everything it does not control: a wall-clock deadline
//! (the child is killed on expiry), the size of stdout (from the declared
//! frame size), and the amount of stderr kept. stdin is written from its own
//! thread so a child that stops reading cannot deadlock the pipe.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::av1;
use super::heif::Avif;
use crate::pipeline::error::PipelineError;
use crate::pipeline::pixels::Pixels;

/// Environment variable naming the program to run as the decoder (it must
/// accept the `__decode-avif` subcommand). Needed only when the pipeline
/// runs inside a binary other than `img-proxy` (tests, embedders).
pub const DECODER_ENV: &str = "IMG_PROXY_AVIF_DECODER";

/// The hidden subcommand's name.
pub const SUBCOMMAND: &str = "__decode-avif";

/// Start of the child's answer, so a mixed-up program (say, a wrong
/// `IMG_PROXY_AVIF_DECODER`) is reported as such rather than as pixels.
const MAGIC: &[u8; 4] = b"IPX1";
const HEADER_LEN: usize = 4 + 4 + 4 + 1;

/// Exit status for "this input cannot be decoded".
const EXIT_CORRUPT: u8 = 1;
/// Exit status for failures on our side (e.g. the decoder did not start).
const EXIT_INTERNAL: u8 = 3;

/// At most this much of the child's stderr is kept (the rest is drained so
/// the child never blocks on it).
const STDERR_KEEP: usize = 1024;

/// Deadline for one decode: a fixed allowance for process start-up plus a
/// per-megapixel budget far above rav1d's no-asm speed on one core (tens of
/// milliseconds per megapixel), so only a stuck decoder hits it.
fn deadline_for(pixels: u64) -> Duration {
    Duration::from_secs(10) + Duration::from_millis(pixels / 1000)
}

/// Arguments of the hidden `__decode-avif` subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct DecodeAvifArgs {
    /// Largest `width * height` to decode.
    #[arg(long)]
    pub max_pixels: u64,
}

/// The child's side: AVIF on stdin, header and pixels on stdout.
pub fn child_main(args: &DecodeAvifArgs) -> ExitCode {
    // One line per panic instead of the default paragraph, for the parent
    // to quote. A panic inside rav1d's `extern "C"` functions still aborts
    // right after this hook; the parent sees the signal.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("AV1 decoder panicked{at}");
    }));
    let mut src = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut src) {
        eprintln!("reading stdin: {e}");
        return ExitCode::from(EXIT_INTERNAL);
    }
    let px = av1::parse(&src).and_then(|p| {
        if u64::from(p.width) * u64::from(p.height) > args.max_pixels {
            return Err(PipelineError::TooManyPixels {
                width: p.width.into(),
                height: p.height.into(),
                max: args.max_pixels,
            });
        }
        av1::decode(&p, args.max_pixels)
    });
    match px {
        Ok(px) => {
            let mut out = std::io::stdout().lock();
            let written = out
                .write_all(&header(&px))
                .and_then(|()| out.write_all(&px.data))
                .and_then(|()| out.flush());
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("writing stdout: {e}");
                    ExitCode::from(EXIT_INTERNAL)
                }
            }
        }
        Err(PipelineError::Internal(m)) => {
            eprintln!("{m}");
            ExitCode::from(EXIT_INTERNAL)
        }
        Err(PipelineError::Corrupt(m)) => {
            eprintln!("{m}");
            ExitCode::from(EXIT_CORRUPT)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_CORRUPT)
        }
    }
}

fn header(px: &Pixels) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(MAGIC);
    h[4..8].copy_from_slice(&px.w.to_le_bytes());
    h[8..12].copy_from_slice(&px.h.to_le_bytes());
    h[12] = px.ch;
    h
}

/// The decoder program: [`DECODER_ENV`] if set, else this very executable
/// (`/proc/self/exe` on Linux, which stays valid when the file on disk is
/// replaced by an upgrade while we run). `None` means "decode in-process",
/// only for this crate's unit tests, whose executable is the test harness.
fn decoder_program() -> Result<Option<PathBuf>, PipelineError> {
    if let Some(p) = std::env::var_os(DECODER_ENV).filter(|p| !p.is_empty()) {
        return Ok(Some(p.into()));
    }
    if cfg!(test) {
        return Ok(None);
    }
    if cfg!(target_os = "linux") {
        return Ok(Some(PathBuf::from("/proc/self/exe")));
    }
    std::env::current_exe()
        .map(Some)
        .map_err(|e| PipelineError::Internal(format!("cannot locate the AVIF decoder: {e}")))
}

/// Decodes a parsed AVIF (`src` is the file `parsed` came from) in a child
/// process; every failure of the child is a [`PipelineError::Corrupt`].
pub(crate) fn decode(src: &[u8], parsed: &Avif, max_pixels: u64) -> Result<Pixels, PipelineError> {
    let Some(program) = decoder_program()? else {
        return av1::decode(parsed, max_pixels);
    };
    let declared = u64::from(parsed.width) * u64::from(parsed.height);
    let limit = declared.min(max_pixels);
    let max_arg = max_pixels.to_string();
    run(
        program.as_os_str(),
        &[
            OsStr::new(SUBCOMMAND),
            OsStr::new("--max-pixels"),
            OsStr::new(&max_arg),
        ],
        src,
        limit,
        deadline_for(limit),
    )
}

/// The error for a child that exited unsuccessfully on its own.
///
/// Which stderr line explains it: on a deliberate exit the child's reason
/// is its last line (a panic caught inside the parser may have printed a
/// hook line before it); on a crash, the panic hook's line is the first
/// (the runtime's abort notice follows it).
fn failure(status: ExitStatus, stderr: &str) -> PipelineError {
    let mut lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    let crashed = status
        .code()
        .is_none_or(|c| c != i32::from(EXIT_CORRUPT) && c != i32::from(EXIT_INTERNAL));
    let reason = if crashed {
        lines.next()
    } else {
        lines.next_back()
    };
    let reason = reason.unwrap_or("no reason given");
    match status.code() {
        Some(c) if c == i32::from(EXIT_CORRUPT) => PipelineError::Corrupt(reason.to_string()),
        Some(c) if c == i32::from(EXIT_INTERNAL) || c == 2 => {
            // 2 is a usage error: the program is not a compatible decoder.
            PipelineError::Internal(format!("AVIF decoder: {reason}"))
        }
        Some(c) => PipelineError::Corrupt(format!("AVIF decoder failed (exit {c}): {reason}")),
        None => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                if let Some(sig) = status.signal() {
                    return PipelineError::Corrupt(format!(
                        "AVIF decoder crashed (signal {sig}): {reason}"
                    ));
                }
            }
            PipelineError::Corrupt(format!("AVIF decoder crashed: {reason}"))
        }
    }
}

/// Runs `program args` with `input` on stdin and reads a frame of at most
/// `max_pixels` pixels from its stdout, killing it after `timeout`.
fn run(
    program: &OsStr,
    args: &[&OsStr],
    input: &[u8],
    max_pixels: u64,
    timeout: Duration,
) -> Result<Pixels, PipelineError> {
    let started = Instant::now();
    // A clean environment: the decoder needs none, and the node's settings
    // (parsed by clap from the environment) must not be able to make the
    // child's command line fail.
    let mut child = std::process::Command::new(program)
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| PipelineError::Internal(format!("cannot start the AVIF decoder: {e}")))?;
    let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        kill(&mut child);
        return Err(PipelineError::Internal("AVIF decoder pipes missing".into()));
    };
    std::thread::scope(|s| {
        // A write error means the child exited or stopped reading: its
        // status says why, so the error itself is not needed.
        s.spawn(move || {
            let _ = stdin.write_all(input);
        });
        let err = s.spawn(move || {
            let mut kept = Vec::new();
            let _ = (&mut stderr)
                .take(STDERR_KEEP as u64)
                .read_to_end(&mut kept);
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            String::from_utf8_lossy(&kept).into_owned()
        });
        let (tx, rx) = mpsc::channel();
        s.spawn(move || {
            let _ = tx.send(read_frame(stdout, max_pixels));
        });
        let frame = rx.recv_timeout(timeout.saturating_sub(started.elapsed()));
        let result = match frame {
            Ok(Ok(px)) => match wait_until(&mut child, started + timeout) {
                Some(st) if st.success() => Ok(px),
                Some(st) => Err(Exit::Failed(st)),
                None => Err(Exit::Lost),
            },
            // A short or malformed answer: usually the child died while
            // writing (its status says how); if it is still running after
            // a moment, it is not a decoder we understand.
            Ok(Err(e)) => {
                let grace = (Instant::now() + Duration::from_millis(500)).min(started + timeout);
                match wait_until(&mut child, grace) {
                    Some(st) if !st.success() && !killed(st) => Err(Exit::Failed(st)),
                    _ => Err(Exit::BadAnswer(e)),
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                kill(&mut child);
                let _ = child.wait();
                Err(Exit::TimedOut)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                kill(&mut child);
                let _ = child.wait();
                Err(Exit::BadAnswer("reader stopped".into()))
            }
        };
        let stderr = err.join().unwrap_or_default();
        result.map_err(|e| e.into_error(&stderr, timeout))
    })
}

/// How a child run went wrong, before mapping to [`PipelineError`].
enum Exit {
    Failed(ExitStatus),
    TimedOut,
    BadAnswer(String),
    Lost,
}

impl Exit {
    /// The error for this outcome; `stderr` is what the child wrote there.
    fn into_error(self, stderr: &str, timeout: Duration) -> PipelineError {
        match self {
            Exit::Failed(st) => failure(st, stderr),
            Exit::TimedOut => PipelineError::Corrupt(format!(
                "AVIF: decoding took longer than {}s",
                timeout.as_secs_f32()
            )),
            Exit::BadAnswer(e) => {
                PipelineError::Internal(format!("AVIF decoder answered badly: {e}"))
            }
            Exit::Lost => PipelineError::Internal("AVIF decoder status lost".into()),
        }
    }
}

/// Whether the child died of our own `kill` (SIGKILL), which says nothing
/// about the input.
fn killed(st: ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        st.signal() == Some(9)
    }
    #[cfg(not(unix))]
    {
        let _ = st;
        false
    }
}

/// Kills; an error means it already exited, which is the goal.
fn kill(child: &mut Child) {
    let _ = child.kill();
}

/// Waits for the child until `deadline`, then kills it. `None` only if the
/// status could not be collected at all.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    let mut pause = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Ok(None) => {
                kill(child);
                return child.wait().ok();
            }
            Err(_) => return None,
        }
    }
}

/// Reads and checks the child's answer: header, then exactly the announced
/// pixels (at most `max_pixels` of them), then end of stream.
fn read_frame(mut r: impl Read, max_pixels: u64) -> Result<Pixels, String> {
    let mut h = [0u8; HEADER_LEN];
    r.read_exact(&mut h).map_err(|e| format!("header: {e}"))?;
    if &h[..4] != MAGIC {
        return Err("not a decoder answer".into());
    }
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let (w, hgt, ch) = (word(4), word(8), h[12]);
    let n = u64::from(w) * u64::from(hgt);
    if w == 0 || hgt == 0 || n > max_pixels || !(1..=4).contains(&ch) {
        return Err(format!("unexpected frame {w}x{hgt}x{ch}"));
    }
    let len = usize::try_from(n * u64::from(ch)).map_err(|_| "frame too large".to_string())?;
    let mut data = Vec::new();
    data.try_reserve_exact(len)
        .map_err(|_| "frame too large for this machine".to_string())?;
    (&mut r)
        .take(len as u64)
        .read_to_end(&mut data)
        .map_err(|e| format!("pixels: {e}"))?;
    if data.len() != len {
        return Err(format!("pixels: {} of {len} bytes", data.len()));
    }
    let mut extra = [0u8; 1];
    match r.read(&mut extra) {
        Ok(0) => Ok(Pixels::new(w, hgt, ch, data)),
        Ok(_) => Err("trailing bytes after the pixels".into()),
        Err(e) => Err(format!("after the pixels: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, input: &[u8], timeout: Duration) -> Result<Pixels, PipelineError> {
        run(
            OsStr::new("/bin/sh"),
            &[OsStr::new("-c"), OsStr::new(script)],
            input,
            100,
            timeout,
        )
    }

    fn corrupt(r: Result<Pixels, PipelineError>) -> String {
        match r {
            Err(PipelineError::Corrupt(m)) => m,
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn frame_round_trip_and_checks() {
        let px = Pixels::new(2, 3, 4, (0..24).collect());
        let mut bytes = header(&px).to_vec();
        bytes.extend_from_slice(&px.data);
        assert_eq!(read_frame(&bytes[..], 6), Ok(px.clone()));
        assert!(read_frame(&bytes[..], 5).is_err(), "over the pixel limit");
        assert!(read_frame(&bytes[..bytes.len() - 1], 6).is_err(), "short");
        let mut long = bytes.clone();
        long.push(0);
        assert!(read_frame(&long[..], 6).is_err(), "trailing");
        let mut bad = bytes.clone();
        bad[12] = 5;
        assert!(read_frame(&bad[..], 6).is_err(), "channels");
        bad = bytes;
        bad[0] = b'x';
        assert!(read_frame(&bad[..], 6).is_err(), "magic");
    }

    #[test]
    fn child_answer_is_read() {
        // 1x2 gray: header then two bytes.
        let r = sh(
            r"printf 'IPX1\001\000\000\000\002\000\000\000\001ab'",
            b"",
            Duration::from_secs(10),
        );
        assert_eq!(r, Ok(Pixels::new(1, 2, 1, b"ab".to_vec())));
    }

    #[test]
    fn failures_are_corrupt_not_crashes() {
        let t = Duration::from_secs(10);
        let m = corrupt(sh(
            "echo 'noise' >&2; echo 'AVIF: bad box' >&2; exit 1",
            b"",
            t,
        ));
        assert_eq!(m, "AVIF: bad box");
        let m = corrupt(sh(
            "echo 'boom' >&2; echo 'aborting' >&2; kill -ABRT $$",
            b"",
            t,
        ));
        assert!(m.contains("signal 6") && m.contains("boom"), "{m}");
        let m = corrupt(sh("kill -SEGV $$", b"", t));
        assert!(m.contains("signal 11"), "{m}");
        let m = corrupt(sh("exit 101", b"", t));
        assert!(m.contains("exit 101"), "{m}");
        // Success status but garbage on stdout: our bug, not the input's.
        let r = sh("echo hello", b"", t);
        assert!(matches!(r, Err(PipelineError::Internal(_))), "{r:?}");
        // A program that is not a decoder at all.
        let r = run(OsStr::new("/nonexistent/decoder"), &[], b"", 1, t);
        assert!(matches!(r, Err(PipelineError::Internal(_))), "{r:?}");
    }

    #[test]
    fn runaway_children_are_stopped() {
        let t = Duration::from_millis(300);
        // Hangs without reading its input (8 MiB, far over a pipe buffer).
        let big = vec![0u8; 8 << 20];
        let start = Instant::now();
        let m = corrupt(sh("exec sleep 30", &big, t));
        assert!(m.contains("longer than"), "{m}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        // Endless output: cut at the frame bound, then killed. (`exec`:
        // the pipes are only closed when every holder is gone, and the
        // real decoder, unlike a shell, starts no processes of its own.)
        let start = Instant::now();
        let r = sh(
            "printf 'IPX1\\012\\000\\000\\000\\012\\000\\000\\000\\001'; exec yes",
            b"",
            Duration::from_secs(10),
        );
        assert!(r.is_err(), "{r:?}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        // Endless stderr does not block either.
        let r = sh("exec yes >&2", b"", t);
        assert!(r.is_err(), "{r:?}");
    }

    /// Latency of one decode in-process and through the child. Run with
    /// `AVIF_BENCH=file.avif IMG_PROXY_AVIF_DECODER=target/release/img-proxy
    /// cargo test --release --lib avif_child -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement, needs AVIF_BENCH and IMG_PROXY_AVIF_DECODER"]
    fn latency_in_process_vs_child() {
        let (Some(file), Some(_)) = (
            std::env::var_os("AVIF_BENCH"),
            std::env::var_os(DECODER_ENV),
        ) else {
            panic!("set AVIF_BENCH and {DECODER_ENV}");
        };
        let src = std::fs::read(file).expect("AVIF_BENCH file");
        let parsed = av1::parse(&src).expect("AVIF_BENCH parses");
        let max = 50_000_000;
        let time = |f: &dyn Fn() -> Pixels| {
            let _ = f(); // warm-up
            let mut best = Duration::MAX;
            let mut sum = Duration::ZERO;
            for _ in 0..10 {
                let t = Instant::now();
                let _ = f();
                best = best.min(t.elapsed());
                sum += t.elapsed();
            }
            (best, sum / 10)
        };
        let inproc = time(&|| av1::decode(&parsed, max).expect("in-process"));
        let child = time(&|| decode(&src, &parsed, max).expect("child"));
        eprintln!(
            "{}x{}: in-process best {:?} mean {:?}; child best {:?} mean {:?}",
            parsed.width, parsed.height, inproc.0, inproc.1, child.0, child.1
        );
    }
}
