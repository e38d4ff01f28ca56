//! The `img-proxy transform` command: files in, files out, no server.

mod common;

use std::path::Path;

use img_proxy_test_support::*;

/// Runs `img-proxy transform` with `args`; returns success and stderr.
fn transform_cli(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_img-proxy"))
        .arg("transform")
        .args(args)
        .env_clear()
        .output()
        .expect("run img-proxy transform");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A temporary directory holding the inputs the tests use.
struct Inputs {
    _tmp: tempfile::TempDir,
    dir: String,
}

impl Inputs {
    fn new() -> Inputs {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_str().expect("UTF-8 temp dir").to_string();
        let inputs = Inputs { _tmp: tmp, dir };
        inputs.write("photo.jpg", &quadrant_jpeg(64, 48));
        inputs.write("alpha.png", &rgba_png(32, 16));
        inputs.write("anim.gif", &gif(2));
        inputs.write("photo.png", &quadrant_png(64, 48));
        inputs.write("broken.jpg", &quadrant_jpeg(64, 48)[..300]);
        inputs
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path(name), bytes).unwrap();
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        let path = self.path(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }
}

#[test]
fn one_file_with_width_and_format() {
    let t = Inputs::new();
    let out = t.path("thumb.webp");
    let (ok, err) = transform_cli(&[
        &t.path("photo.jpg"),
        "-o",
        &out,
        "--width",
        "32",
        "--format",
        "webp",
    ]);
    assert!(ok, "{err}");
    let bytes = t.read("thumb.webp");
    assert_eq!(magic(&bytes), Some("image/webp"));
    assert_eq!(dimensions(&bytes), (32, 24));
    assert_quadrants(&decode(&bytes), 40, "cli webp");
}

/// Without `--format` the output's extension decides; a name that names no
/// format keeps the source's format.
#[test]
fn the_output_extension_picks_the_format() {
    let t = Inputs::new();
    for (name, mime) in [
        ("thumb.png", "image/png"),
        ("thumb.WEBP", "image/webp"),
        ("thumb.jpeg", "image/jpeg"),
        ("thumb", "image/jpeg"),
        ("thumb.out", "image/jpeg"),
    ] {
        let (ok, err) =
            transform_cli(&[&t.path("photo.jpg"), "-o", &t.path(name), "--width", "16"]);
        assert!(ok, "{name}: {err}");
        let bytes = t.read(name);
        assert_eq!(magic(&bytes), Some(mime), "{name}");
        assert_eq!(dimensions(&bytes), (16, 12), "{name}");
    }
}

#[test]
fn an_extension_of_a_format_we_cannot_write_is_refused() {
    let t = Inputs::new();
    let out = t.path("thumb.gif");
    let (ok, err) = transform_cli(&[&t.path("photo.jpg"), "-o", &out, "--width", "16"]);
    assert!(!ok);
    assert!(err.contains(".gif") && err.contains("--format"), "{err}");
    assert!(!Path::new(&out).exists());
}

/// `-o dir/` names a directory, created if missing, also for one input.
#[test]
fn a_trailing_slash_makes_the_output_a_directory() {
    let t = Inputs::new();
    let (ok, err) = transform_cli(&[&t.path("alpha.png"), "-o", &t.path("single/"), "-W", "8"]);
    assert!(ok, "{err}");
    assert_eq!(dimensions(&t.read("single/alpha.png")), (8, 4));
}

/// Several files into a directory (created), one result per input, named
/// after the input with the output format's extension.
#[test]
fn several_files_go_into_a_directory_one_result_each() {
    let t = Inputs::new();
    let inputs = [t.path("photo.jpg"), t.path("alpha.png"), t.path("anim.gif")];
    let outdir = t.path("thumbs/");
    let mut args: Vec<&str> = inputs.iter().map(String::as_str).collect();
    args.extend(["-o", &outdir, "--width", "8"]);
    let (ok, err) = transform_cli(&args);
    assert!(ok, "{err}");
    let mut names: Vec<String> = std::fs::read_dir(&outdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["alpha.png", "anim.png", "photo.jpg"]);
    for (name, mime, size) in [
        ("photo.jpg", "image/jpeg", (8, 6)),
        ("alpha.png", "image/png", (8, 4)),
        ("anim.png", "image/png", (8, 7)),
    ] {
        let bytes = t.read(&format!("thumbs/{name}"));
        assert_eq!(magic(&bytes), Some(mime), "{name}");
        assert_eq!(dimensions(&bytes), size, "{name}");
    }
}

/// Two inputs that would land on one output name: refused before any work,
/// instead of one result silently overwriting the other.
#[test]
fn two_inputs_for_one_output_name_are_refused() {
    let t = Inputs::new();
    let clash = t.path("clash");
    let (ok, err) = transform_cli(&[
        &t.path("photo.jpg"),
        &t.path("photo.png"),
        "-o",
        &clash,
        "--format",
        "webp",
    ]);
    assert!(!ok, "two inputs, one output name: accepted");
    assert!(
        err.contains("photo.jpg") && err.contains("photo.png") && err.contains("photo.webp"),
        "{err}"
    );
    assert!(!Path::new(&clash).exists());
}

#[test]
fn a_corrupt_input_fails_naming_the_file_and_writes_nothing() {
    let t = Inputs::new();
    let out = t.path("never.jpg");
    let (ok, err) = transform_cli(&[&t.path("broken.jpg"), "-o", &out, "--width", "16"]);
    assert!(!ok);
    assert!(
        err.contains("broken.jpg") && err.contains("corrupt"),
        "{err}"
    );
    assert!(!Path::new(&out).exists(), "output for a corrupt input");
}

/// In a batch the good inputs are still done, and the exit says failure.
#[test]
fn a_batch_with_a_corrupt_input_does_the_others_and_fails() {
    let t = Inputs::new();
    let batch = t.path("batch");
    let (ok, err) = transform_cli(&[
        &t.path("photo.jpg"),
        &t.path("broken.jpg"),
        "-o",
        &batch,
        "--width",
        "8",
    ]);
    assert!(!ok);
    assert!(
        err.contains("broken.jpg") && err.contains("corrupt"),
        "{err}"
    );
    assert!(err.contains("1 of 2 inputs failed"), "{err}");
    assert_eq!(dimensions(&t.read("batch/photo.jpg")), (8, 6));
}

#[test]
fn bad_options_are_refused_as_the_http_api_refuses_them() {
    let t = Inputs::new();
    let (ok, err) = transform_cli(&[
        &t.path("photo.jpg"),
        "-o",
        &t.path("x.jpg"),
        "--width",
        "100000",
    ]);
    assert!(!ok);
    assert!(err.contains("`w`"), "{err}");
}

#[cfg(feature = "avif-decode")]
#[test]
fn avif_sources_are_decoded_and_the_output_name_or_format_decides() {
    let t = Inputs::new();
    t.write("x.avif", &avif(100, 70));
    let x = t.path("x.avif");
    // `-o y.png`: a PNG, decoded from the AVIF; an explicit --format wins
    // over the name; a name without a format keeps AVIF.
    for (out, extra, mime) in [
        ("y.png", &[][..], "image/png"),
        ("w.png", &["--format", "webp"][..], "image/webp"),
        ("z", &[], "image/avif"),
    ] {
        let out_path = t.path(out);
        let mut args = vec![x.as_str(), "-o", &out_path, "--width", "50"];
        args.extend_from_slice(extra);
        let (ok, err) = transform_cli(&args);
        assert!(ok, "{out}: {err}");
        let bytes = t.read(out);
        assert_eq!(magic(&bytes), Some(mime), "{out}");
        assert_eq!(dimensions(&bytes), (50, 35), "{out}");
    }
    assert_quadrants(&decode(&t.read("y.png")), 40, "cli avif");
}

#[cfg(feature = "avif-decode")]
#[test]
fn a_truncated_avif_fails_clearly() {
    let t = Inputs::new();
    t.write("x.avif", &avif(100, 70)[..200]);
    let (ok, err) = transform_cli(&[&t.path("x.avif"), "-o", &t.path("y.png"), "--width", "50"]);
    assert!(!ok);
    assert!(err.contains("x.avif") && err.contains("corrupt"), "{err}");
}

#[test]
fn gravity_moves_the_cover_crop_and_bad_values_are_refused() {
    let t = Inputs::new();
    let crop = |gravity: &str, name: &str| {
        let out = t.path(name);
        let args = [
            "-W",
            "16",
            "-H",
            "16",
            "--fit",
            "cover",
            "--gravity",
            gravity,
        ];
        let (ok, err) =
            transform_cli(&[&[t.path("photo.png").as_str(), "-o", &out], &args[..]].concat());
        (ok, err, if ok { t.read(name) } else { Vec::new() })
    };
    let (ok, err, west) = crop("west", "west.png");
    assert!(ok, "{err}");
    assert_eq!(dimensions(&west), (16, 16));
    let (ok, err, east) = crop("fp:1:0.5", "east.png");
    assert!(ok, "{err}");
    assert_ne!(west, east, "the crop moved");
    let (ok, err, _) = crop("up", "bad.png");
    assert!(!ok);
    assert!(err.contains("`gravity`"), "{err}");
}
